//! Completions and man pages are generated from the one clap definition
//! and committed. This test fails when they are stale; run it with
//! `VIDPIPE_REGENERATE=1` to rewrite them.

use clap_complete::Shell;
use std::path::{Path, PathBuf};

fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for (shell, name) in [
        (Shell::Bash, "vidpipe.bash"),
        (Shell::Zsh, "_vidpipe"),
        (Shell::Fish, "vidpipe.fish"),
    ] {
        let mut out = Vec::new();
        clap_complete::generate(shell, &mut super::command(), "vidpipe", &mut out);
        files.push((PathBuf::from("completions").join(name), out));
    }
    // Man pages list real commands only: no `vidpipe-help(1)`, and each
    // subcommand's synopsis reads `vidpipe probe`, not `vidpipe-probe`.
    let mut cmd = super::command().disable_help_subcommand(true);
    cmd.build();
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd.clone())
        .render(&mut page)
        .expect("render man page");
    files.push((PathBuf::from("man/vidpipe.1"), page));
    for sub in cmd.get_subcommands().filter(|s| s.get_name() != "help") {
        let name = format!("vidpipe-{}", sub.get_name());
        let mut page = Vec::new();
        let bin_name = format!("vidpipe {}", sub.get_name());
        clap_mangen::Man::new(sub.clone().name(name.clone()).bin_name(bin_name))
            .render(&mut page)
            .expect("render man page");
        files.push((PathBuf::from("man").join(format!("{name}.1")), page));
    }
    files
}

#[test]
fn completions_and_man_pages_are_fresh() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let regenerate = std::env::var_os("VIDPIPE_REGENERATE").is_some();
    let mut stale = Vec::new();
    for (rel, bytes) in generated() {
        let path = root.join(&rel);
        if regenerate {
            std::fs::create_dir_all(path.parent().expect("has parent")).expect("mkdir");
            std::fs::write(&path, &bytes).expect("write generated file");
        } else if std::fs::read(&path).ok().as_deref() != Some(bytes.as_slice()) {
            stale.push(rel.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files {stale:?}: run `VIDPIPE_REGENERATE=1 cargo test completions_and_man_pages_are_fresh` and commit"
    );
}
