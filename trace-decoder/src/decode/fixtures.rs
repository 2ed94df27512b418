//! Events from their displayed form, for tests: `event(7, "Module start=0x1
//! end=0x2")` is the event a loader would have sent to make defmt-print show that
//! line. The decoder itself never reads display strings back; tests use this to
//! write events the way a person reads them.

use defmt_parser::{Fragment, ParserMode, Type};
use rusty_loader::wire::{FieldSpec, LoaderEvent, Value, EVENTS};

use super::event::Event;

/// The event whose display is `message`, at `timestamp` ticks. A message whose
/// first word is not an event of the contract becomes an unknown event of that name.
///
/// # Panics
/// When the first word names an event of the contract but the rest does not read as
/// its fields: a test's event written for another trace format would otherwise
/// become an unknown event silently. [`unknown`] makes one on purpose.
pub fn event(timestamp: u64, message: &str) -> Event {
    let name = message.split(' ').next().unwrap_or("");
    let Some(spec) = EVENTS.iter().find(|spec| spec.name == name) else {
        return unknown(timestamp, message);
    };
    let kind = values(spec.format, spec.fields, message)
        .and_then(|values| LoaderEvent::from_values(name, &values).ok())
        .unwrap_or_else(|| panic!("{message:?} does not read as `{}`", spec.format));
    Event::new(timestamp, kind)
}

/// An event the contract does not know, named by the first word of `message`
/// (which may be a known event's name, for an event of another trace format).
pub fn unknown(timestamp: u64, message: &str) -> Event {
    let name = message.split(' ').next().unwrap_or("");
    Event::new(
        timestamp,
        LoaderEvent::Unknown {
            name: name.to_string(),
            message: message.to_string(),
        },
    )
}

/// Reads the values of `format` (whose parameters are `fields`) back from `text`,
/// or `None` if it does not match.
fn values(format: &str, fields: &[FieldSpec], text: &str) -> Option<Vec<Value>> {
    let fragments = defmt_parser::parse(format, ParserMode::ForwardsCompatible).ok()?;
    let mut rest = text;
    let mut values = Vec::new();
    for (i, fragment) in fragments.iter().enumerate() {
        match fragment {
            Fragment::Literal(literal) => rest = rest.strip_prefix(literal.as_ref())?,
            Fragment::Parameter(p) => {
                // A value runs to the next literal (or to the end).
                let end = match fragments.get(i + 1) {
                    Some(Fragment::Literal(next)) if p.ty != Type::FormatSlice => {
                        rest.find(next.as_ref())?
                    }
                    Some(Fragment::Literal(next)) => rest.find(&format!("]{next}"))? + 1,
                    _ => rest.len(),
                };
                let (value, tail) = rest.split_at(end);
                rest = tail;
                let element = fields.get(p.index).and_then(|f| f.ty.element_format());
                values.push(value_of(&p.ty, element, value)?);
            }
        }
    }
    rest.is_empty().then_some(values)
}

fn value_of(ty: &Type, element_format: Option<&str>, text: &str) -> Option<Value> {
    Some(match ty {
        Type::Bool => Value::Bool(text.parse().ok()?),
        Type::Str | Type::IStr => Value::Str(text.to_string()),
        Type::FormatSlice => {
            let inner = text.strip_prefix('[')?.strip_suffix(']')?;
            let items = if inner.is_empty() {
                Vec::new()
            } else {
                inner
                    .split(", ")
                    .map(|item| values(element_format?, &[], item))
                    .collect::<Option<Vec<_>>>()?
            };
            Value::List(items)
        }
        _ => Value::Unsigned(match text.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok()?,
            None => text.parse().ok()?,
        }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_kind_of_field_back() {
        let e = event(7, "Module start=0x1000 end=0x2000");
        assert_eq!(
            e.kind,
            LoaderEvent::Module {
                start: 0x1000,
                end: 0x2000
            }
        );
        assert_eq!(e.timestamp, 7);
        let line = "CommandLine kernel_args_at=10 app_args_at=65535 text=/x -freq 2800 -- a=b  c";
        assert_eq!(event(0, line).message(), line);
        let map = "MemoryMap regions=[0x0-0x9fc00:1, 0x9fc00-0xa0000:2]";
        assert_eq!(event(0, map).message(), map);
        assert_eq!(
            event(0, "MemoryMap regions=[]").message(),
            "MemoryMap regions=[]"
        );
        let kernel = "Kernel kind=dyn entry_version=4 version=0.13.0 generation=0.11+ segments=4 base=0x800000 entry=0x8043e0";
        assert_eq!(event(0, kernel).message(), kernel);
        let mapping = "Mapping start=0x1000 end=0x2000 page_kib=4 writable=true";
        assert_eq!(event(0, mapping).message(), mapping);
        assert_eq!(event(0, mapping).level, rusty_loader::wire::Level::Debug);
        // Another format of a known event, made on purpose.
        let odd = unknown(0, "Module start=banana end=0x2");
        assert_eq!(odd.name(), "Module");
        assert!(matches!(odd.kind, LoaderEvent::Unknown { .. }));
        assert_eq!(odd.message(), "Module start=banana end=0x2");
        assert_eq!(event(0, "Junk a=b").name(), "Junk", "not a contract event");
    }

    #[test]
    fn a_known_event_in_another_format_is_a_test_bug() {
        let outdated = std::panic::catch_unwind(|| event(0, "Frequency khz=1000 source=cmdline"));
        assert!(
            outdated.is_err(),
            "a format-2 Frequency must not pass as an event"
        );
    }
}
