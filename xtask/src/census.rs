//! `cargo xtask census [APP]`: which of the loader's code QEMU translates in one boot.
//!
//! Under TCG every distinct block of guest code is translated the first time it runs,
//! which costs microseconds whatever the block then does; for a loader, which runs
//! most of its code once, that is most of its wall time (docs/benchmarks.md). The
//! trace times stages; this tells which code inside them is translated: QEMU logs
//! each block it translates (`-d in_asm`), and the blocks that lie in the loader's
//! code are counted per function of the loader ELF (with DWARF, per loader
//! function inlined into it too). The counts do not depend on the host (only a few
//! blocks on timing-dependent paths, such as the frequency measurement's polling,
//! vary from run to run), so they can be compared before and after a change on a
//! busy machine.

use std::collections::HashMap;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use trace_decoder::report::symbols::AppSymbols;
use xshell::Shell;

use crate::build::{self, Profile, TraceLevel};
use crate::qemu::{self, Machine, QemuConfig, QemuStderr};

/// `cargo xtask census`: the options.
#[derive(clap::Args)]
pub struct CensusArgs {
    /// The application to boot (default: the demo app, hello-dyn).
    app: Option<PathBuf>,
    /// Build and boot the debug loader (default: release, what users boot).
    #[arg(long)]
    debug: bool,
    /// Trace verbosity compiled into the loader (`off`: what tracing costs, by
    /// difference).
    #[arg(long, value_enum, default_value = "info")]
    trace_level: TraceLevel,
    /// Use the microvm machine type instead of pc.
    #[arg(long)]
    microvm: bool,
    /// Kernel arguments, passed with -append.
    #[arg(long)]
    append: Option<String>,
    /// How many functions to list.
    #[arg(long, default_value_t = 25)]
    top: usize,
}

impl CensusArgs {
    /// `cargo xtask census`: boots once and prints the counts.
    pub fn run(self, sh: &Shell) -> Result<ExitCode> {
        run(
            sh,
            &CensusOptions {
                app: self.app,
                profile: Profile::from_release(!self.debug),
                trace_level: self.trace_level,
                machine: if self.microvm {
                    Machine::Microvm
                } else {
                    Machine::Pc
                },
                append: self.append,
                top: self.top,
            },
        )?;
        Ok(ExitCode::SUCCESS)
    }
}

/// What to boot and how to show it.
pub struct CensusOptions {
    /// The application; None: the demo app (`hello-dyn`).
    pub app: Option<PathBuf>,
    pub profile: Profile,
    pub trace_level: TraceLevel,
    pub machine: Machine,
    pub append: Option<String>,
    /// Functions listed, largest first.
    pub top: usize,
}

/// One block QEMU translated: where it starts and how many instructions it holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TranslatedBlock {
    pub start: u64,
    pub instructions: u32,
}

/// The blocks of a `-d in_asm` log, in the order QEMU translated them: each starts
/// after an `IN:` line and lists one `0x<address>:` line per instruction until a
/// blank line.
pub fn parse_in_asm(log: &str) -> Vec<TranslatedBlock> {
    let mut blocks = Vec::new();
    let mut current: Option<TranslatedBlock> = None;
    for line in log.lines() {
        if line.starts_with("IN:") {
            blocks.extend(current.take());
            current = Some(TranslatedBlock {
                start: u64::MAX,
                instructions: 0,
            });
            continue;
        }
        let Some(block) = current.as_mut() else {
            continue;
        };
        if line.trim().is_empty() {
            blocks.extend(current.take());
            continue;
        }
        let address = line
            .strip_prefix("0x")
            .and_then(|rest| rest.split_once(':'))
            .and_then(|(hex, _)| u64::from_str_radix(hex, 16).ok());
        if let Some(address) = address {
            if block.instructions == 0 {
                block.start = address;
            }
            block.instructions += 1;
        }
    }
    blocks.extend(current);
    blocks.retain(|b| b.instructions > 0);
    blocks
}

/// Blocks and instructions translated for one function.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FunctionCount {
    pub name: String,
    pub blocks: u32,
    pub instructions: u32,
}

/// The loader's share of `blocks`, per function, largest first: the function the
/// symbol table names, followed by `›` and the innermost of the loader's own
/// functions inlined into it at the block's start, when DWARF names one (library
/// code such as `core::slice` inlined there counts for the loader function that
/// called it: that is the code to change).
pub fn count_by_function(blocks: &[TranslatedBlock], symbols: &AppSymbols) -> Vec<FunctionCount> {
    let own =
        |name: &&String| name.starts_with("rusty_loader::") || name.starts_with("<rusty_loader::");
    let mut counts: HashMap<String, FunctionCount> = HashMap::new();
    for block in blocks.iter().filter(|b| symbols.is_code(b.start)) {
        let location = symbols.lookup(block.start);
        let mut name = location
            .function
            .unwrap_or_else(|| format!("{:#x} (no symbol)", block.start));
        if let Some(inlined) = location.inlined.iter().find(own) {
            name = format!("{name} › {inlined}");
        }
        let count = counts.entry(name.clone()).or_insert_with(|| FunctionCount {
            name,
            ..FunctionCount::default()
        });
        count.blocks += 1;
        count.instructions += block.instructions;
    }
    let mut counts: Vec<FunctionCount> = counts.into_values().collect();
    counts.sort_by(|a, b| b.blocks.cmp(&a.blocks).then_with(|| a.name.cmp(&b.name)));
    counts
}

/// Boots once with QEMU logging its translations and prints the loader's census.
pub fn run(sh: &Shell, options: &CensusOptions) -> Result<()> {
    let qemu_binary = qemu::find_qemu(None)?;
    let loader = build::build_loader(sh, options.profile, options.trace_level)?;
    let app = match &options.app {
        Some(app) => {
            if !app.is_file() {
                bail!("{}: no such file", app.display());
            }
            app.clone()
        }
        None => build::build_test_kernels(sh, options.profile)?.hello_dyn,
    };
    let log = crate::project_root().join("target/census/in_asm.log");
    std::fs::create_dir_all(log.parent().expect("a parent"))?;
    let _ = std::fs::remove_file(&log);
    let config = QemuConfig {
        qemu: qemu_binary,
        machine: options.machine,
        append: options.append.clone(),
        extra_args: vec![
            "-d".into(),
            "in_asm".into(),
            "-D".into(),
            log.clone().into(),
        ],
        ..QemuConfig::new(&loader.image, &app)
    };
    eprintln!(
        "census: booting {} (QEMU logs every translated block)",
        app.display()
    );
    let finished = qemu::run(
        &config,
        Duration::from_secs(120),
        QemuStderr::Capture,
        |_| ControlFlow::Continue(()),
    )?;
    if finished.timed_out {
        bail!("{} did not finish within 120 s", config.display());
    }
    let text = std::fs::read_to_string(&log)
        .with_context(|| format!("reading QEMU's log {}", log.display()))?;
    let symbols = AppSymbols::read(&loader.elf).map_err(anyhow::Error::msg)?;
    let counts = count_by_function(&parse_in_asm(&text), &symbols);
    print(&counts, options.top, &loader.elf);
    Ok(())
}

fn print(counts: &[FunctionCount], top: usize, elf: &Path) {
    let blocks: u32 = counts.iter().map(|c| c.blocks).sum();
    let instructions: u32 = counts.iter().map(|c| c.instructions).sum();
    println!(
        "{blocks} translated blocks, {instructions} instructions in the loader's code ({})",
        elf.display()
    );
    println!(
        "{:>7} {:>7}  function › inlined into it",
        "blocks", "instrs"
    );
    for count in counts.iter().take(top) {
        let mut name = count.name.clone();
        if name.chars().count() > 110 {
            name = name.chars().take(109).collect::<String>() + "…";
        }
        println!("{:>7} {:>7}  {name}", count.blocks, count.instructions);
    }
    if counts.len() > top {
        let rest = &counts[top..];
        println!(
            "{:>7} {:>7}  ({} more functions)",
            rest.iter().map(|c| c.blocks).sum::<u32>(),
            rest.iter().map(|c| c.instructions).sum::<u32>(),
            rest.len()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_are_read_from_the_log() {
        let log = "\
----------------
IN: 
0x000fff53:  2e 66 83 3e 68 00 00     cmpl     $0, %cs:0x68
0x000fff5a:  0f 85 f8 f1              jne      0xe156

----------------
IN: 
0x0010002b:  fa                       cli      
0x0010002c:  fc                       cld      
0x0010002d:  bd 01 00 00 00           movl     $1, %ebp

Some other log line
----------------
IN: rusty_loader::loader_main
0x00100365:  55                       pushq    %rbp
";
        assert_eq!(
            parse_in_asm(log),
            vec![
                TranslatedBlock {
                    start: 0xfff53,
                    instructions: 2
                },
                TranslatedBlock {
                    start: 0x10002b,
                    instructions: 3
                },
                TranslatedBlock {
                    start: 0x100365,
                    instructions: 1
                },
            ]
        );
        assert!(parse_in_asm("").is_empty());
        assert!(parse_in_asm("IN: \n\n").is_empty());
    }
}
