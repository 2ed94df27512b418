//! The README as a newcomer follows it on a fresh clone: its QEMU command is the
//! runner's own standard command line (with `-no-reboot`) piped into the decoder,
//! its links lead somewhere, and it shows nothing of one developer's machine.

use xtask::qemu::{BootProtocol, QemuConfig};

fn read(relative: &str) -> String {
    std::fs::read_to_string(xtask::project_root().join(relative)).unwrap()
}

/// Splits a command line as a shell does for the simple cases the README uses:
/// spaces, double quotes and `\` line continuations.
fn shell_words(command: &str) -> Vec<String> {
    let joined = command.replace("\\\n", " ");
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut in_word = false;
    for c in joined.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                in_word = true;
            }
            c if c.is_whitespace() && !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

#[test]
fn the_qemu_command_is_the_standard_one_with_no_reboot_and_the_decoder() {
    let readme = read("README.md");
    let start = readme
        .find("qemu-system-x86_64 -cpu ")
        .expect("a full QEMU command line");
    let end = start + readme[start..].find("\n```").unwrap();
    let words = shell_words(&readme[start..end]);
    let config = QemuConfig {
        append: Some("-- app args".to_string()),
        ..QemuConfig::new("target/x86_64/debug/rusty-loader", "app.elf")
    };
    let mut expected = vec!["qemu-system-x86_64".to_string()];
    expected.extend(
        config
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned()),
    );
    expected.extend(["|".to_string(), "rusty-trace".to_string()]);
    assert_eq!(words, expected);
    assert!(words.contains(&"-no-reboot".to_string()));
    // How rusty-trace gets on the PATH, and that it can.
    assert!(readme.contains("cargo install --path trace-decoder"));
    assert!(read("trace-decoder/Cargo.toml").contains("name = \"rusty-trace\""));
}

/// The PVH section's QEMU command is the runner's with `--boot pvh`.
#[test]
fn the_pvh_qemu_command_is_the_runners_pvh_one() {
    let readme = read("README.md");
    let section = &readme[readme
        .find("## Booting through PVH")
        .expect("a PVH section")..];
    let start = section
        .find("qemu-system-x86_64 -cpu ")
        .expect("a full QEMU command line");
    let end = start + section[start..].find("\n```").unwrap();
    let words = shell_words(&section[start..end]);
    let config = QemuConfig {
        append: Some("-- app args".to_string()),
        boot: BootProtocol::Pvh,
        ..QemuConfig::new("target/x86_64/debug/rusty-loader", "app.elf")
    };
    let mut expected = vec!["qemu-system-x86_64".to_string()];
    expected.extend(
        config
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned()),
    );
    expected.extend(["|".to_string(), "rusty-trace".to_string()]);
    assert_eq!(words, expected);
    assert!(words.contains(&"target/x86_64/debug/rusty-loader.elf".to_string()));
}

/// The UEFI section's QEMU command is the runner's with `--boot uefi --q35`.
#[test]
fn the_uefi_qemu_command_is_the_runners_uefi_one() {
    let readme = read("README.md");
    let section = &readme[readme
        .find("## Booting through UEFI")
        .expect("a UEFI section")..];
    let start = section
        .find("qemu-system-x86_64 -cpu ")
        .expect("a full QEMU command line");
    let end = start + section[start..].find("\n```").unwrap();
    let words = shell_words(&section[start..end]);
    let config = QemuConfig {
        append: Some("-- app args".to_string()),
        boot: BootProtocol::Uefi,
        machine: xtask::qemu::Machine::Q35,
        ..QemuConfig::new("target/x86_64/debug/rusty-loader", "app.elf")
    };
    let mut expected = vec!["qemu-system-x86_64".to_string()];
    expected.extend(
        config
            .args()
            .iter()
            .map(|a| a.to_string_lossy().into_owned()),
    );
    expected.extend(["|".to_string(), "rusty-trace".to_string()]);
    assert_eq!(words, expected);
    assert!(words.contains(&"target/x86_64/debug/rusty-loader.efi".to_string()));
}

#[test]
fn the_decoder_is_piped_as_a_built_binary() {
    let readme = read("README.md");
    // `cargo run` compiles while QEMU's output waits: the stream would arrive in one
    // burst and the host times would be wrong.
    for line in readme.lines().filter(|l| l.contains("| ")) {
        assert!(!line.contains("| cargo run"), "{line}");
    }
    assert!(readme.contains("| target/release/rusty-trace"));
}

#[test]
fn links_lead_somewhere_and_nothing_is_machine_specific() {
    let readme = read("README.md");
    let root = xtask::project_root();
    let mut linked = Vec::new();
    for piece in readme.split("](").skip(1) {
        let target = &piece[..piece.find(')').unwrap()];
        if target.starts_with("http") {
            continue;
        }
        let path = target.split('#').next().unwrap();
        assert!(root.join(path).exists(), "README links {target}");
        linked.push(path.to_string());
    }
    for doc in [
        "docs/ARCHITECTURE.md",
        "docs/hermit-abi.md",
        "docs/report-schema.md",
        "docs/exit-codes.md",
        "docs/trace-format.md",
    ] {
        assert!(linked.iter().any(|l| l == doc), "README links {doc}");
    }
    for machine_specific in ["/work/", "/home/", "/root/", "/Users/"] {
        assert!(!readme.contains(machine_specific), "{machine_specific}");
    }
    assert!(readme.contains("target/test-kernels/release/hello-dyn"));
    assert!(!read("Cargo.toml").contains("example.invalid"));
}

/// The Quick start's first command installs QEMU and OVMF only when one is missing, and uses
/// sudo only when not root (a root shell in a container has no sudo): run with
/// stand-ins for `id`, `apt-get` and `sudo` that log their use.
#[test]
fn the_quick_start_uses_sudo_only_when_not_root() {
    let readme = read("README.md");
    let line = readme
        .lines()
        .find(|l| l.starts_with("( (command -v qemu-system-x86_64 &&"))
        .expect("the Quick start's install line");
    let command = line
        .strip_suffix(" && cargo xtask run")
        .expect("it ends by booting the demo");
    for (uid, expected) in [
        ("0", "apt-get update\napt-get install -y qemu-system-x86 ovmf\n"),
        (
            "1000",
            "sudo apt-get update\napt-get update\nsudo apt-get install -y qemu-system-x86 ovmf\napt-get install -y qemu-system-x86 ovmf\n",
        ),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log");
        let stub = |name: &str, body: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
            let mut permissions = std::fs::metadata(&path).unwrap().permissions();
            std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
            std::fs::set_permissions(&path, permissions).unwrap();
        };
        let log_shown = log.display();
        stub("id", &format!("echo {uid}"));
        stub("apt-get", &format!("echo apt-get \"$@\" >> '{log_shown}'"));
        stub("sudo", &format!("echo sudo \"$@\" >> '{log_shown}'; \"$@\""));
        // Only the stand-ins on the PATH: QEMU is missing.
        let status = std::process::Command::new("/bin/sh")
            .args(["-c", command])
            .env("PATH", dir.path())
            .status()
            .unwrap();
        assert!(status.success(), "uid {uid}");
        assert_eq!(std::fs::read_to_string(&log).unwrap(), expected, "uid {uid}");
    }
}
