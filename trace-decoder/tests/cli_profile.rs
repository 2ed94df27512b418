//! `rusty-trace --save-profile` and `--baseline` on the recorded streams: a profile
//! written from recordings, a recording compared with its own profile (passes), with
//! a profile edited to be faster (fails with status 3, naming the stage), and every
//! kind of bad input (exit status 2 for usage and baseline problems and for an input
//! that is not a whole boot), and how the boots ran (the recordings' `.status`
//! files) carried in the profile: another time base refused, other differences
//! named.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

fn recording(name: &str) -> String {
    recordings()
        .join(format!("{name}.bin"))
        .display()
        .to_string()
}

fn recordings() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/recordings")
}

/// Runs rusty-trace with the recordings' ELF, and standard input from `stdin` (or
/// nothing).
fn rusty_trace(args: &[&str], stdin: Option<&Path>) -> Output {
    let elf = recordings().join("rusty-loader.elf");
    let stdin = match stdin {
        Some(path) => Stdio::from(std::fs::File::open(path).unwrap()),
        None => Stdio::null(),
    };
    Command::new(env!("CARGO_BIN_EXE_rusty-trace"))
        .arg("--elf")
        .arg(elf)
        .args(args)
        .env_remove("NO_COLOR")
        .stdin(stdin)
        .output()
        .expect("rusty-trace runs")
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn shown(output: &Output) -> String {
    format!(
        "status {:?}\n--- stdout\n{}\n--- stderr\n{}",
        output.status.code(),
        stdout(output),
        stderr(output)
    )
}

/// Writes the profile of `inputs` to `path` and returns it as JSON.
fn save_profile(path: &Path, inputs: &[&str]) -> serde_json::Value {
    let mut args = vec!["--save-profile", path.to_str().unwrap()];
    args.extend_from_slice(inputs);
    let output = rusty_trace(&args, None);
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

/// The stage called `name` in a profile.
fn stage<'a>(profile: &'a mut serde_json::Value, name: &str) -> &'a mut serde_json::Value {
    profile["stages"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no stage {name}"))
}

#[test]
fn a_profile_holds_every_stage_of_every_input() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.json");
    let inputs = [
        recording("hello-dyn-pc"),
        recording("legacy-dyn-microvm"),
        recording("hello-exec-pc"),
    ];
    let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
    let profile = save_profile(&path, &inputs);
    assert_eq!(profile["schema"], "rusty-loader/boot-profile");
    assert_eq!(profile["version"], 2);
    assert_eq!(profile["unit"], "us");
    assert_eq!(profile["runs"], 3);
    let stages = profile["stages"].as_array().unwrap();
    for name in ["mode switch", "page tables", "loader total"] {
        assert!(
            stages.iter().any(|s| s["name"] == name),
            "{name}: {profile}"
        );
    }
    for stage in stages {
        let (min, median, max) = (
            stage["min"].as_f64().unwrap(),
            stage["median"].as_f64().unwrap(),
            stage["max"].as_f64().unwrap(),
        );
        assert!(min <= median && median <= max, "{stage}");
    }
}

#[test]
fn a_recording_passes_against_its_own_profile() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.json");
    let input = recording("hello-dyn-pc");
    save_profile(&path, &[&input]);
    // From standard input, as from `qemu ... | rusty-trace --baseline`.
    let output = rusty_trace(
        &["--baseline", path.to_str().unwrap()],
        Some(Path::new(&input)),
    );
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let out = stdout(&output);
    assert!(out.starts_with("stage "), "the statistics first\n{out}");
    assert!(out.contains("\nstage vs baseline "), "{out}");
    assert!(
        out.ends_with("no stage slower than the baseline by more than 10%\n"),
        "{out}"
    );
    assert!(!out.contains("REGRESSION"), "{out}");
    assert_eq!(stderr(&output), "");
}

#[test]
fn a_faster_baseline_fails_with_status_3_naming_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.json");
    let input = recording("hello-dyn-pc");
    let mut profile = save_profile(&path, &[&input]);
    // The baseline says page tables took half as long: the recording is now 100 %
    // slower there (over a millisecond, far above the noise floor).
    let page_tables = stage(&mut profile, "page tables");
    page_tables["median"] = (page_tables["median"].as_f64().unwrap() / 2.0).into();
    std::fs::write(&path, profile.to_string()).unwrap();

    let output = rusty_trace(&["--baseline", path.to_str().unwrap(), &input], None);
    assert_eq!(output.status.code(), Some(3), "{}", shown(&output));
    let out = stdout(&output);
    let flagged: Vec<&str> = out.lines().filter(|l| l.ends_with("REGRESSION")).collect();
    assert_eq!(flagged.len(), 1, "{out}");
    assert!(flagged[0].starts_with("page tables "), "{out}");
    assert!(flagged[0].contains("+100.0%"), "{out}");
    assert_eq!(
        stderr(&output),
        "rusty-trace: error: 1 stage(s) slower than the baseline by more than 10%\n"
    );

    // A threshold above the slowdown lets it pass.
    let output = rusty_trace(
        &[
            "--baseline",
            path.to_str().unwrap(),
            "--max-regression",
            "150%",
            &input,
        ],
        None,
    );
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    assert!(stdout(&output).ends_with("by more than 150%\n"));
}

#[test]
fn stages_only_one_side_has_are_named_not_compared() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("profile.json");
    let input = recording("hello-dyn-pc");
    let mut profile = save_profile(&path, &[&input]);
    stage(&mut profile, "page tables")["name"] = "old page tables".into();
    std::fs::write(&path, profile.to_string()).unwrap();
    let output = rusty_trace(&["--baseline", path.to_str().unwrap(), &input], None);
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let out = stdout(&output);
    assert!(
        out.contains("not compared, only in the baseline: old page tables\n"),
        "{out}"
    );
    assert!(out.contains("not compared, new: page tables\n"), "{out}");
}

/// One `rusty-trace: error: ...` line (or clap's `error: ...`), with `needle`.
fn assert_error(output: &Output, code: i32, needle: &str) {
    assert_eq!(output.status.code(), Some(code), "{}", shown(output));
    let err = stderr(output);
    let errors: Vec<&str> = err
        .lines()
        .filter(|l| l.starts_with("rusty-trace: error: ") || l.starts_with("error: "))
        .collect();
    assert_eq!(errors.len(), 1, "{}", shown(output));
    assert!(errors[0].contains(needle), "{needle:?}\n{}", shown(output));
    assert!(!err.contains("panicked"), "{}", shown(output));
    assert_eq!(stdout(output), "", "{}", shown(output));
}

#[test]
fn bad_baselines_and_options_are_usage_errors() {
    let dir = tempfile::tempdir().unwrap();
    let input = recording("hello-dyn-pc");
    let profile = dir.path().join("profile.json");
    save_profile(&profile, &[&input]);
    let profile = profile.to_str().unwrap();

    let missing = dir.path().join("missing.json");
    let output = rusty_trace(&["--baseline", missing.to_str().unwrap(), &input], None);
    assert_error(&output, 2, "cannot read the baseline");

    // A report is JSON, but not a profile.
    let report = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/snapshots/hello-dyn-pc.json");
    let output = rusty_trace(&["--baseline", report.to_str().unwrap(), &input], None);
    assert_error(
        &output,
        2,
        "is not a usable baseline: the baseline is not a boot profile",
    );

    let output = rusty_trace(
        &["--baseline", profile, "--max-regression", "ten", &input],
        None,
    );
    assert_error(&output, 2, "not a percentage");
    let output = rusty_trace(&["--max-regression", "5%", &input], None);
    assert_error(&output, 2, "required arguments were not provided");
    assert!(
        stderr(&output).contains("--baseline <PROFILE>"),
        "{}",
        shown(&output)
    );
    let output = rusty_trace(&["--baseline", profile, "--svg", "boot.svg", &input], None);
    assert_error(&output, 2, "cannot be used with");
    let output = rusty_trace(&[&input, &input], None);
    assert_error(
        &output,
        2,
        "several inputs are read only with --baseline or --save-profile",
    );

    let unwritable = dir.path().join("no/such/dir/profile.json");
    let output = rusty_trace(
        &["--save-profile", unwritable.to_str().unwrap(), &input],
        None,
    );
    assert_eq!(output.status.code(), Some(2), "{}", shown(&output));
    assert!(
        stderr(&output).contains("cannot write the profile to"),
        "{}",
        shown(&output)
    );
}

#[test]
fn an_input_that_is_not_a_whole_boot_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let profile = dir.path().join("profile.json");
    let output = rusty_trace(
        &[
            "--save-profile",
            profile.to_str().unwrap(),
            &recording("hello-dyn-pc"),
            &recording("not-an-elf"),
        ],
        None,
    );
    assert_error(
        &output,
        2,
        "not-an-elf.bin: the boot did not hand over to the kernel",
    );
    assert!(!profile.exists(), "no profile from a refused boot");

    let empty = dir.path().join("empty.bin");
    std::fs::write(&empty, b"").unwrap();
    let output = rusty_trace(
        &[
            "--save-profile",
            profile.to_str().unwrap(),
            empty.to_str().unwrap(),
        ],
        None,
    );
    assert_error(&output, 2, "no boot trace found");
}

#[test]
fn help_names_the_profile_options_and_status_3() {
    let output = rusty_trace(&["--help"], None);
    assert_eq!(output.status.code(), Some(0));
    let help = stdout(&output);
    for needle in [
        "--baseline <PROFILE>",
        "--max-regression <PERCENT>",
        "--save-profile <FILE>",
        "            3  --baseline: a stage is slower than the baseline allows",
        "rusty-trace --baseline profile.json --max-regression 10% new1.bin new2.bin",
    ] {
        assert!(help.contains(needle), "{needle:?} in\n{help}");
    }
}

/// A copy of the recording `name` in `dir` as `file`, with `beside` as its
/// `.status` file (QEMU's end and how the boot ran, as `cargo xtask trace --save`
/// writes it).
fn recorded_run(dir: &Path, name: &str, file: &str, beside: &str) -> String {
    let path = dir.join(format!("{file}.bin"));
    std::fs::copy(recording(name), &path).unwrap();
    std::fs::write(dir.join(format!("{file}.status")), beside).unwrap();
    path.display().to_string()
}

#[test]
fn a_profile_keeps_how_its_boots_ran() {
    let dir = tempfile::tempdir().unwrap();
    let input = recorded_run(
        dir.path(),
        "hello-dyn-pc",
        "wall",
        "3\ntime-base: wall\nloader-profile: debug\napp: hello-dyn\nmachine: pc\nqemu-version: 7.2.19\n",
    );
    let profile = save_profile(&dir.path().join("profile.json"), &[&input]);
    let context = &profile["context"];
    assert_eq!(profile["version"], 2, "{profile:#}");
    for (key, value) in [
        ("time-base", "wall"),
        ("loader-profile", "debug"),
        ("trace-level", "info"),
        ("app", "hello-dyn"),
        ("machine", "pc"),
        ("qemu-version", "7.2.19"),
    ] {
        assert_eq!(context[key], value, "{key}: {context:#}");
    }
    // The recording's loader traced no `Entry` event yet: unknown, not guessed.
    assert_eq!(context["entry"], serde_json::Value::Null, "{context:#}");
    assert!(
        context["loader-build"].as_str().unwrap().starts_with("0x"),
        "{context:#}"
    );
    assert!(
        context["kernel"]
            .as_str()
            .unwrap()
            .starts_with("dyn, 0.13.0 (0.11+)"),
        "{context:#}"
    );
}

#[test]
fn a_baseline_of_another_time_base_is_refused_and_other_differences_named() {
    let dir = tempfile::tempdir().unwrap();
    let wall = recorded_run(
        dir.path(),
        "hello-dyn-pc",
        "wall",
        "3\ntime-base: wall\nloader-profile: release\nmachine: pc\n",
    );
    let baseline = dir.path().join("baseline.json");
    save_profile(&baseline, &[&wall]);
    let baseline = baseline.to_str().unwrap();

    // A --deterministic recording against a wall-time baseline.
    let counted = recorded_run(
        dir.path(),
        "hello-dyn-pc",
        "counted",
        "3\ntime-base: instructions (-icount shift=0,sleep=off)\nloader-profile: release\nmachine: pc\n",
    );
    let output = rusty_trace(&["--baseline", baseline, &counted], None);
    assert_error(
        &output,
        2,
        "the baseline's times count wall and this profile's instructions (-icount shift=0,sleep=off): wall-clock and instruction times do not compare",
    );

    // A debug loader on microvm against a release one on pc: compared, and named
    // in the output and the verdict.
    let other = recorded_run(
        dir.path(),
        "hello-dyn-pc",
        "other",
        "3\ntime-base: wall\nloader-profile: debug\nmachine: microvm\n",
    );
    let output = rusty_trace(&["--baseline", baseline, &other], None);
    assert_eq!(output.status.code(), Some(0), "{}", shown(&output));
    let out = stdout(&output);
    assert!(
        out.contains(
            "the boots ran differently from the baseline's:\n  loader profile  release → debug\n  machine         pc → microvm\n"
        ),
        "{out}"
    );
    assert!(
        out.ends_with("(the boots ran differently: loader profile, machine)\n"),
        "{out}"
    );
}
