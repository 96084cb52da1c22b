//! Mapping `object_store` errors to the storage manager's.

use smgr_api::Error;

/// Wraps an `object_store` error with the operation and key. Not-found and
/// precondition failures get their own kinds; the rest keep the store's
/// message (which never contains credentials: `object_store` errors carry
/// keys and status codes, not configuration).
pub(crate) fn from_store(op: &'static str, key: &str, err: object_store::Error) -> Error {
    match err {
        object_store::Error::NotFound { .. } => Error::NotFound {
            path: key.to_owned(),
        },
        object_store::Error::Precondition { .. } | object_store::Error::AlreadyExists { .. } => {
            Error::Conflict {
                path: key.to_owned(),
                detail: "the object was changed by someone else",
            }
        }
        // Final whatever the retry: the request itself is not allowed.
        object_store::Error::PermissionDenied { .. }
        | object_store::Error::Unauthenticated { .. } => Error::io(
            op,
            key,
            std::io::Error::new(std::io::ErrorKind::PermissionDenied, err.to_string()),
        ),
        object_store::Error::NotSupported { .. } | object_store::Error::NotImplemented { .. } => {
            Error::io(
                op,
                key,
                std::io::Error::new(std::io::ErrorKind::Unsupported, err.to_string()),
            )
        }
        object_store::Error::InvalidPath { .. } => Error::io(
            op,
            key,
            std::io::Error::new(std::io::ErrorKind::InvalidInput, err.to_string()),
        ),
        // Anything else (a 5xx after the client's own retries, a reset
        // connection, a broken body) may pass if tried again.
        other => Error::io(op, key, std::io::Error::other(other.to_string())),
    }
}
