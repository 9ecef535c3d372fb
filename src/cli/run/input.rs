//! One input through every step of the pipeline.
//!
//! Each step is first prepared for the input (its files found beside the
//! input, its settings resolved); a step the input's record lists as done
//! with the same fingerprint, whose output is still there, is complete and
//! costs nothing. When two or more steps that decode the input will run and
//! the input is remote, it is fetched once into the input's scratch
//! directory, which every step reads and which goes with the input however
//! it ends. Steps then run in order; the first failure leaves the later
//! steps unrun. An `s3://` source is deleted only when no step failed.

use super::step::{Action, Ended, PlannedStep, StepInput};
use super::RunPlan;
use crate::cli::context::Ctx;
use std::time::Instant;
use vidpipe::fsutil::ScratchDir;
use vidpipe::inputs::InputItem;
use vidpipe::media::remote::{RemoteError, RemoteInput, ScratchCopy};
use vidpipe::pipeline::fetch::{fetch_object, FetchError};
use vidpipe::pipeline::files::{self, Beside};
use vidpipe::pipeline::manifest::Placeholders;
use vidpipe::pipeline::record::RunRecord;
use vidpipe::progress::{Event, InputOutcome, Position, StepOutcome};
use vidpipe::storage::{Destination, S3Session};

/// What every input's run shares.
pub struct Runner<'a> {
    pub plan: &'a RunPlan,
    pub ctx: &'a Ctx,
    /// The pipeline's output.
    pub dest: &'a dyn Destination,
    pub session: Option<&'a S3Session>,
}

/// What the steps of one input share, owned for as long as they run.
struct Around {
    /// Fetched files and the fetched input; removed when dropped.
    scratch: ScratchDir,
    /// What earlier runs did with the input.
    record: RunRecord,
    vars: Placeholders,
    beside: Beside,
}

impl Around {
    /// The input as a step sees it.
    fn input<'a>(
        &'a self,
        runner: &Runner<'a>,
        item: &'a InputItem,
        position: Position,
    ) -> StepInput<'a> {
        StepInput {
            item,
            position,
            vars: &self.vars,
            beside: &self.beside,
            output: &runner.plan.output,
            scratch: self.scratch.path(),
            session: runner.session,
        }
    }
}

/// A remote input read into local scratch.
struct Fetched {
    /// The input, opened from the copy.
    item: InputItem,
    /// A URL's copy, removed when dropped.
    _copy: Option<ScratchCopy>,
}

/// A step made ready for one input, and what it will do.
struct Prepared<'a> {
    step: &'a PlannedStep,
    action: Action,
    /// Done by an earlier run, output in place.
    complete: bool,
}

impl Prepared<'_> {
    /// Whether it will run (and, if it decodes the input, read it).
    fn runs(&self) -> bool {
        !self.complete && matches!(self.action, Action::Run { .. })
    }
}

impl Runner<'_> {
    /// Runs every step on `item`.
    pub fn run(&self, item: &InputItem, position: Position) -> InputOutcome {
        let started = Instant::now();
        let mut outcome = InputOutcome {
            input: item.source.clone(),
            output: self.plan.output.join(&item.stem).to_string(),
            ok: false,
            steps: Vec::new(),
            source_deleted: false,
            seconds: 0.0,
            error: None,
        };
        match self.steps(item, position, &mut outcome) {
            Ok(()) => {}
            Err(reason) => {
                self.ctx.fail(&item.source, &reason);
                outcome.error = Some(reason);
            }
        }
        // Every step done now or before, or skipped for want of files: an
        // interrupted input (steps `not-run`) is not, so its source stays.
        let finished =
            |s: &StepOutcome| matches!(s.outcome.as_str(), "done" | "complete" | "skipped");
        outcome.ok = outcome.error.is_none() && outcome.steps.iter().all(finished);
        if outcome.ok && self.plan.delete_source {
            outcome.source_deleted = self.delete_source(item, &mut outcome);
        }
        outcome.seconds = started.elapsed().as_secs_f64();
        self.ctx.reporter.report(Event::InputDone {
            input: outcome.input.clone(),
            output: outcome.output.clone(),
            ok: outcome.ok,
            seconds: outcome.seconds,
        });
        outcome
    }

    /// Prepares and runs the steps; `Err` when the input failed outside
    /// any step (its scratch, its record, fetching it).
    fn steps(
        &self,
        item: &InputItem,
        position: Position,
        outcome: &mut InputOutcome,
    ) -> Result<(), String> {
        let mut around = self.around(item)?;
        let mut record = std::mem::take(&mut around.record);
        let mut input = around.input(self, item, position);
        let prepared: Vec<Prepared> = self
            .plan
            .steps
            .iter()
            .map(|step| self.prepare(step, &input, &record))
            .collect();
        let decoders = prepared
            .iter()
            .filter(|p| p.runs() && p.step.decodes_input())
            .count();
        let remote = item.object.is_some() || vidpipe::media::is_url(&item.source);
        let fetched;
        if decoders > 1 && remote {
            fetched = self.fetch_once(item, around.scratch.path())?;
            input.item = &fetched.item;
        }
        let mut stopped = false;
        for p in prepared {
            let name = p.step.name.to_string();
            let report = |outcome: &str, reason: Option<String>, seconds: f64| StepOutcome {
                step: name.clone(),
                outcome: outcome.into(),
                reason,
                seconds,
            };
            if stopped || self.ctx.cancel.load(std::sync::atomic::Ordering::SeqCst) {
                let why = if stopped {
                    "an earlier step failed"
                } else {
                    "interrupted"
                };
                outcome.steps.push(report("not-run", Some(why.into()), 0.0));
                continue;
            }
            let fingerprint = match (&p.action, p.complete) {
                (_, true) => {
                    self.skipped(item, &name, "already complete");
                    outcome.steps.push(report("complete", None, 0.0));
                    continue;
                }
                (Action::Skip(reason), _) => {
                    self.skipped(item, &name, reason);
                    outcome
                        .steps
                        .push(report("skipped", Some(reason.clone()), 0.0));
                    continue;
                }
                (Action::Fail(reason), _) => {
                    self.failed(item, &name, reason);
                    outcome
                        .steps
                        .push(report("failed", Some(reason.clone()), 0.0));
                    stopped = true;
                    continue;
                }
                (Action::Run { fingerprint, .. }, _) => fingerprint.clone(),
            };
            let Action::Run { ready, .. } = &p.action else {
                continue;
            };
            self.ctx.reporter.report(Event::StepStarted {
                input: item.source.clone(),
                step: name.clone(),
                resume: p.step.resumes(self.dest, &item.stem),
            });
            let started = Instant::now();
            let ended = p.step.run(ready, &input, self.ctx);
            let seconds = started.elapsed().as_secs_f64();
            match ended {
                Ended::Done => {
                    self.ctx.reporter.report(Event::StepDone {
                        input: item.source.clone(),
                        step: name.clone(),
                        seconds,
                    });
                    outcome.steps.push(report("done", None, seconds));
                    record
                        .finish(self.dest, &item.stem, &p.step.key(), &fingerprint)
                        .map_err(|e| e.to_string())?;
                }
                Ended::Failed(reason) => {
                    self.failed(item, &name, &reason);
                    outcome.steps.push(report("failed", Some(reason), seconds));
                    stopped = true;
                }
                Ended::Interrupted => {
                    outcome
                        .steps
                        .push(report("not-run", Some("interrupted".into()), seconds));
                    stopped = true;
                }
            }
        }
        Ok(())
    }

    /// What the steps need around `item`: its scratch directory, its
    /// record, its placeholders and where it lives.
    fn around(&self, item: &InputItem) -> Result<Around, String> {
        Ok(Around {
            scratch: ScratchDir::new("vidpipe-run-")
                .map_err(|e| format!("cannot make a scratch directory: {e}"))?,
            record: RunRecord::load(self.dest, &item.stem, &item.identity)
                .map_err(|e| e.to_string())?,
            vars: files::placeholders(item),
            beside: Beside::of(item),
        })
    }

    /// `step` made ready for the input, and whether it is complete.
    fn prepare<'s>(
        &self,
        step: &'s PlannedStep,
        input: &StepInput<'_>,
        record: &RunRecord,
    ) -> Prepared<'s> {
        let action = step.prepare(input);
        let complete = match &action {
            Action::Run { fingerprint, .. } => {
                record.done(&step.key(), fingerprint)
                    && step.output_present(self.dest, &input.item.stem)
            }
            _ => false,
        };
        Prepared {
            step,
            action,
            complete,
        }
    }

    /// `--dry-run`: what each step would do with `item`, as events and,
    /// for a person, one line per input.
    pub fn plan_only(&self, item: &InputItem, position: Position) -> Result<Vec<String>, String> {
        let around = self.around(item)?;
        let input = around.input(self, item, position);
        let mut words = Vec::new();
        for step in &self.plan.steps {
            let p = self.prepare(step, &input, &around.record);
            let (action, reason) = match &p.action {
                _ if p.complete => ("complete", "done by an earlier run".to_string()),
                Action::Skip(reason) => ("skip", reason.clone()),
                Action::Fail(reason) => ("fail", reason.clone()),
                Action::Run { .. } if step.resumes(self.dest, &item.stem) => {
                    ("resume", "its checkpoint is beside the output".to_string())
                }
                Action::Run { .. } => ("run", String::new()),
            };
            self.ctx.reporter.report(Event::StepPlanned {
                input: item.source.clone(),
                step: step.name.into(),
                action: action.into(),
                reason: reason.clone(),
            });
            words.push(match reason.is_empty() {
                true => format!("{} {action}", step.name),
                false => format!("{} {action} ({reason})", step.name),
            });
        }
        Ok(words)
    }

    /// Copies a remote input into local scratch once, for every step that
    /// decodes it: a bucket object into the input's `scratch`, a URL into
    /// a scratch copy of its own. The copy keeps the input's name, source
    /// and identity.
    fn fetch_once(&self, item: &InputItem, scratch: &std::path::Path) -> Result<Fetched, String> {
        let fetched = match (&item.object, self.session) {
            (Some((bucket, key)), Some(session)) => {
                let to = scratch.join(files::placeholders(item).name);
                fetch_object(session, (bucket, key), &to, &self.ctx.cancel)
                    .map(|_| (to.display().to_string(), None))
            }
            _ => RemoteInput::connect(&item.open, &self.ctx.cancel)
                .and_then(RemoteInput::save)
                .map(|copy| (copy.path().display().to_string(), Some(copy)))
                .map_err(|e| match e {
                    RemoteError::Interrupted => FetchError::Interrupted,
                    e => FetchError::Io(e.to_string()),
                }),
        };
        match fetched {
            Ok((open, copy)) => Ok(Fetched {
                item: InputItem {
                    open,
                    ..item.clone()
                },
                _copy: copy,
            }),
            Err(FetchError::Interrupted) => Err("interrupted while fetching it".into()),
            Err(e) => Err(e.to_string()),
        }
    }

    fn skipped(&self, item: &InputItem, step: &str, reason: &str) {
        self.ctx.reporter.report(Event::StepSkipped {
            input: item.source.clone(),
            step: step.into(),
            reason: reason.into(),
        });
    }

    fn failed(&self, item: &InputItem, step: &str, message: &str) {
        self.ctx.reporter.report(Event::StepFailed {
            input: item.source.clone(),
            step: step.into(),
            message: message.into(),
        });
    }

    /// Deletes an `s3://` source whose every step succeeded; `true` when
    /// it did. A failure to delete fails the input.
    fn delete_source(&self, item: &InputItem, outcome: &mut InputOutcome) -> bool {
        let (Some((bucket, key)), Some(session)) = (&item.object, self.session) else {
            return false;
        };
        match session.delete(bucket, key) {
            Ok(()) => true,
            Err(e) => {
                let reason = format!("every step succeeded, but the source cannot be deleted: {e}");
                self.ctx.fail(&item.source, &reason);
                outcome.error = Some(reason);
                outcome.ok = false;
                false
            }
        }
    }
}
