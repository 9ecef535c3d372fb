//! `vidpipe`: parse, set up logging and progress, dispatch, map the result
//! to the documented exit codes (0 ok, 1 some inputs failed, 2 usage or
//! configuration error, 130 interrupted).

mod cli;

use clap::Parser;
use cli::report::{Bars, JsonLines};
use cli::settings::Layers;
use cli::{Cli, Command, ProgressMode};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use vidpipe::progress::{Reporter, Silent};

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_logging(cli.verbose, cli.quiet);
    match run(cli) {
        Ok(outcome) => outcome.exit_code(),
        Err(report) => {
            eprintln!("error: {report:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> color_eyre::Result<cli::Outcome> {
    let layers = Layers::load(&cli)?;
    let progress = layers.progress(&cli)?;
    let reporter: Box<dyn Reporter> = match progress {
        ProgressMode::Json => Box::new(JsonLines::default()),
        ProgressMode::Bars => Box::new(Bars::new()),
        ProgressMode::Auto if std::io::stderr().is_terminal() => Box::new(Bars::new()),
        ProgressMode::Auto | ProgressMode::None => Box::new(Silent),
    };
    let chatty = cli.quiet == 0 && progress != ProgressMode::Json;
    // Warnings reach a terminal user whatever --progress shows.
    let warnings = cli::PrintWarnings {
        inner: reporter.as_ref(),
        print: cli.quiet == 0,
    };
    match &cli.command {
        Command::TranscodeHls(args) => {
            let run = layers.transcode(args)?;
            let cancel = cancel_on_signal();
            Ok(cli::transcode::run(
                &run,
                reporter.as_ref(),
                &cancel,
                chatty,
            ))
        }
        Command::UploadChunked(args) => {
            let settings = cli::upload::settings(args).map_err(color_eyre::eyre::Report::msg)?;
            let s3 = vidpipe::storage::S3Options {
                endpoint_url: cli.endpoint_url.clone(),
                ..Default::default()
            };
            if args.list_incomplete {
                return cli::upload::list_incomplete(&args.paths[0], &s3, args.json)
                    .map_err(color_eyre::eyre::Report::msg);
            }
            let cancel = cancel_on_signal();
            let json = progress == ProgressMode::Json;
            cli::upload::run(
                args,
                &settings,
                &s3,
                reporter.as_ref(),
                &cancel,
                chatty,
                json,
            )
            .map_err(color_eyre::eyre::Report::msg)
        }
        Command::Captions(args) => {
            let run = layers.captions(args)?;
            let cancel = cancel_on_signal();
            cli::captions::run(&run, &warnings, &cancel, chatty)
                .map_err(color_eyre::eyre::Report::msg)
        }
        Command::Commentary(args) => {
            let run = cli::commentary::settings(&layers, args)?;
            let cancel = cancel_on_signal();
            cli::commentary::run(&run, &warnings, &cancel, chatty)
                .map_err(color_eyre::eyre::Report::msg)
        }
        Command::Probe(args) => Ok(cli::probe(&args.input)),
    }
}

/// Ctrl-C and SIGTERM set a flag the jobs poll; a second Ctrl-C exits at once.
fn cancel_on_signal() -> vidpipe::CancelFlag {
    let flag = Arc::new(AtomicBool::new(false));
    let handler_flag = flag.clone();
    let installed = ctrlc::set_handler(move || {
        if handler_flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
        eprintln!("stopping: finishing the current step and saving the checkpoint (Ctrl-C again to quit now)");
    });
    if let Err(e) = installed {
        tracing::warn!("cannot install the interrupt handler: {e}");
    }
    flag
}

fn init_logging(verbose: u8, quiet: u8) {
    // The AWS SDK warns about every credential source it tries (EC2
    // metadata and so on); vidpipe reports the failure that matters itself.
    let level = match (verbose, quiet) {
        (0, 0) => "warn,aws_config=error,aws_smithy_runtime=error",
        (_, 1) => "error",
        (_, q) if q >= 2 => "off",
        (1, _) => "info,vidpipe=debug",
        _ => "debug,vidpipe=trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_env("VIDPIPE_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
}
