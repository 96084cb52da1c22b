//! A loopback HTTP proxy that holds every request a while before passing
//! it on: cloud latency in front of the local S3 test server, for
//! benchmarks (`scripts/bench-verify-latency.sh`).
//!
//! Usage: latency-proxy UPSTREAM_ADDR DELAY_MS
//! Prints `http://127.0.0.1:PORT` on its first line, then serves until
//! killed.

use std::time::Duration;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (Some(upstream), Some(delay)) = (args.get(1), args.get(2)) else {
        eprintln!("usage: latency-proxy UPSTREAM_ADDR DELAY_MS (for example 127.0.0.1:8333 20)");
        std::process::exit(2);
    };
    let upstream = match upstream.parse() {
        Ok(addr) => addr,
        Err(err) => {
            eprintln!("latency-proxy: {upstream} is not IP:PORT: {err}");
            std::process::exit(2);
        }
    };
    let Ok(delay) = delay.parse::<u64>() else {
        eprintln!("latency-proxy: DELAY_MS must be a whole number of milliseconds");
        std::process::exit(2);
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("latency-proxy: cannot start a runtime: {err}");
            std::process::exit(2);
        }
    };
    runtime.block_on(async {
        let proxy = match integration::wire::WireProxy::start(upstream).await {
            Ok(proxy) => proxy,
            Err(err) => {
                eprintln!("latency-proxy: cannot listen: {err}");
                std::process::exit(2);
            }
        };
        proxy.set_delay(Duration::from_millis(delay));
        println!("{}", proxy.endpoint());
        std::future::pending::<()>().await;
    });
}
