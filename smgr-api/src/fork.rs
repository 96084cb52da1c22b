//! Forks of a relation.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// One of the files that together store a relation (PostgreSQL's
/// `ForkNumber`): the main data, the free space map, the visibility map, or
/// the initialization fork of an unlogged relation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum ForkNumber {
    /// `MAIN_FORKNUM`: the relation's data; file names have no suffix.
    Main = 0,
    /// `FSM_FORKNUM`: the free space map, suffix `_fsm`.
    Fsm = 1,
    /// `VISIBILITYMAP_FORKNUM`: the visibility map, suffix `_vm`.
    VisibilityMap = 2,
    /// `INIT_FORKNUM`: the init fork of an unlogged relation, suffix `_init`.
    Init = 3,
}

impl ForkNumber {
    /// Every fork, in PostgreSQL's numbering order.
    pub const ALL: [ForkNumber; 4] = [
        ForkNumber::Main,
        ForkNumber::Fsm,
        ForkNumber::VisibilityMap,
        ForkNumber::Init,
    ];

    /// The name PostgreSQL uses for the fork (`forkNames[]`): `main`, `fsm`,
    /// `vm`, `init`.
    pub const fn name(self) -> &'static str {
        match self {
            ForkNumber::Main => "main",
            ForkNumber::Fsm => "fsm",
            ForkNumber::VisibilityMap => "vm",
            ForkNumber::Init => "init",
        }
    }

    /// The suffix the fork adds to a relation's file name: empty for the main
    /// fork, otherwise `_` and the fork's name.
    pub const fn file_suffix(self) -> &'static str {
        match self {
            ForkNumber::Main => "",
            ForkNumber::Fsm => "_fsm",
            ForkNumber::VisibilityMap => "_vm",
            ForkNumber::Init => "_init",
        }
    }
}

impl fmt::Display for ForkNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for ForkNumber {
    type Err = Error;

    /// Parses a fork name as PostgreSQL spells it (`main`, `fsm`, `vm`, `init`).
    fn from_str(s: &str) -> Result<Self, Error> {
        ForkNumber::ALL
            .into_iter()
            .find(|fork| fork.name() == s)
            .ok_or_else(|| Error::InvalidPath {
                input: s.to_owned(),
                reason: "not a fork name (expected main, fsm, vm or init)",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for fork in ForkNumber::ALL {
            assert_eq!(fork.name().parse::<ForkNumber>().unwrap(), fork);
        }
        assert!("Main".parse::<ForkNumber>().is_err());
        assert!("".parse::<ForkNumber>().is_err());
    }
}
