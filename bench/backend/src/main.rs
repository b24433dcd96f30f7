//! fixed-latency-aws: the benchmark backend's command line (see the
//! library docs and bench/README.md).

use std::io::Write;
use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    let args = match eventline_bench_backend::parse_args(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            println!("{}", eventline_bench_backend::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!(
                "fixed-latency-aws: {e}\n\n{}",
                eventline_bench_backend::USAGE
            );
            return ExitCode::from(2);
        }
    };
    let server = match eventline_bench_backend::Server::start(args.addr, args.config).await {
        Ok(server) => server,
        Err(e) => {
            eprintln!("fixed-latency-aws: cannot listen on {}: {e}", args.addr);
            return ExitCode::FAILURE;
        }
    };
    // The harness reads this line to learn the port.
    println!("PORT {}", server.addr().port());
    let _ = std::io::stdout().flush();
    server.wait().await;
    ExitCode::FAILURE
}
