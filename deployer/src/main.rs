//! `deployer` binary: parse the command line, run, map the outcome to an exit code
//! (0 ok, 1 failure, 2 usage).

use clap::Parser;

fn main() {
    let cli = deployer::cli::Cli::parse();
    let filter = if cli.global.verbose {
        "deployer=debug"
    } else {
        "deployer=warn"
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .with_writer(std::io::stderr)
        .without_time()
        .init();
    let code = deployer::app::main(cli);
    std::process::exit(code);
}
