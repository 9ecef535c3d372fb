//! `vidpipe`: parse, set up logging and progress, dispatch, map the result
//! to the documented exit codes (0 ok, 1 some inputs failed, 2 usage or
//! configuration error, 130 interrupted).

mod cli;

use clap::Parser;
use cli::layers::Layers;
use cli::report::Shown;
use cli::{Cli, CliError, Ctx, ProgressMode};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let layers = match Layers::load(&cli) {
        Ok(layers) => layers,
        Err(e) => {
            init_logging(cli.verbose, cli.quiet);
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    init_logging(layers.verbose, layers.quiet);
    let shown = match layers.progress {
        ProgressMode::Auto if std::io::stderr().is_terminal() => Shown::Bars,
        ProgressMode::Bars => Shown::Bars,
        ProgressMode::Json => Shown::Json,
        ProgressMode::Auto | ProgressMode::None => Shown::None,
    };
    let json = shown == Shown::Json;
    let ctx = Ctx::new(
        cli::report::console_reporter(shown, layers.quiet > 0),
        cancel_on_signal(),
        layers.quiet == 0 && !json,
        json,
        layers.s3().clone(),
    );
    match cli::execute(&cli, &layers, &ctx) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(e) => {
            match &e {
                CliError::Settings(settings) => eprintln!("error: {settings}"),
                CliError::Runtime { subject, reason } => ctx.fail(subject, reason),
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Ctrl-C and SIGTERM set a flag the jobs poll; a second Ctrl-C exits at once.
fn cancel_on_signal() -> vidpipe::CancelFlag {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    let installed = ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            vidpipe::fsutil::remove_scratch();
            std::process::exit(130);
        }
        eprintln!("stopping on request: finishing the current step and saving the checkpoint (interrupt again to quit now)");
    });
    if let Err(e) = installed {
        tracing::warn!("cannot install the interrupt handler: {e}");
    }
    flag
}

fn init_logging(verbose: u8, quiet: u8) {
    // The AWS SDK warns about every credential source it tries (EC2
    // metadata and so on); vidpipe reports the failure that matters itself.
    // -v shows vidpipe's own debug lines (ladder, segment cuts, retries);
    // the SDK's request-level logs only come with -vv.
    let level = match (verbose, quiet) {
        (0, 0) => "warn,aws_config=error,aws_smithy_runtime=error",
        (_, 1) => "error",
        (_, q) if q >= 2 => "off",
        (1, _) => "warn,vidpipe=debug,aws_config=error,aws_smithy_runtime=error",
        _ => "info,vidpipe=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIDPIPE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
}
