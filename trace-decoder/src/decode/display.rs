//! How an event reads, as defmt-print shows it (`Module start=0x1 end=0x2`),
//! written from its typed fields. The wire contract's format string of each event
//! kind says how (the literal text, and each field's place and display hint); it is
//! read once per kind into a [`Template`], and an event's field values
//! ([`LoaderEvent::values`], the contract's one view of a typed event's fields) are
//! written into it: no wire arguments, no format string parsed per event.

use std::fmt::Write as _;
use std::sync::OnceLock;

use defmt_parser::{DisplayHint, Fragment, ParserMode};
use rusty_loader::wire::{EventSpec, LoaderEvent, Value, EVENTS};

use super::event::LinePiece;

/// How a number is written, from its display hint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Radix {
    Decimal,
    /// `{=u32:x}`
    Hex,
    /// `{=u32:#x}`
    PrefixedHex,
    /// `{=u32:#b}`
    PrefixedBinary,
}

impl Radix {
    fn of(hint: Option<&DisplayHint>) -> Radix {
        match hint {
            Some(DisplayHint::Hexadecimal {
                alternate: true, ..
            }) => Radix::PrefixedHex,
            Some(DisplayHint::Hexadecimal { .. }) => Radix::Hex,
            Some(DisplayHint::Binary {
                alternate: true, ..
            }) => Radix::PrefixedBinary,
            _ => Radix::Decimal,
        }
    }
}

/// One part of a format: literal text, or the place of a value.
#[derive(Clone, Debug)]
enum Slot {
    Text(String),
    /// The value at `index` of the event's (or a list element's) values.
    Value {
        index: usize,
        radix: Radix,
    },
    /// A list field at `index`, each element written into `element`.
    List {
        index: usize,
        element: Template,
    },
}

/// A format string, read: what [`write`] fills in.
#[derive(Clone, Debug, Default)]
struct Template {
    slots: Vec<Slot>,
}

impl Template {
    /// Reads `format`; a list parameter's elements read by `element_format`. `None`
    /// when the format does not parse.
    fn read(
        format: &str,
        element_format: &dyn Fn(usize) -> Option<&'static str>,
    ) -> Option<Template> {
        let fragments = defmt_parser::parse(format, ParserMode::ForwardsCompatible).ok()?;
        let slots = fragments
            .into_iter()
            .map(|fragment| match fragment {
                Fragment::Literal(text) => Slot::Text(text.into_owned()),
                Fragment::Parameter(p) if p.ty == defmt_parser::Type::FormatSlice => {
                    Slot::List {
                        index: p.index,
                        // An element format that does not parse shows as nothing.
                        element: element_format(p.index)
                            .and_then(|format| Template::read(format, &|_| None))
                            .unwrap_or_default(),
                    }
                }
                Fragment::Parameter(p) => Slot::Value {
                    index: p.index,
                    radix: Radix::of(p.hint.as_ref()),
                },
            })
            .collect();
        Some(Template { slots })
    }

    /// The template of one contract event, its lists' elements by their field types.
    fn of_event(spec: &EventSpec) -> Option<Template> {
        Template::read(spec.format, &|index| {
            spec.fields.get(index).and_then(|f| f.ty.element_format())
        })
    }
}

/// The templates of the contract's events, in [`EVENTS`] order, read once.
fn templates() -> &'static [Option<Template>] {
    static TEMPLATES: OnceLock<Vec<Option<Template>>> = OnceLock::new();
    TEMPLATES.get_or_init(|| EVENTS.iter().map(Template::of_event).collect())
}

/// `event` in pieces: text, and lists whose items a terminal may wrap.
pub fn pieces(event: &LoaderEvent) -> Vec<LinePiece> {
    let Some(spec) = event.spec() else {
        let message = match event {
            LoaderEvent::Unknown { message, .. } => message.clone(),
            other => other.name().to_string(),
        };
        return vec![LinePiece::Text(message)];
    };
    let template = EVENTS
        .iter()
        .position(|known| std::ptr::eq(known, spec) || known.name == spec.name)
        .and_then(|index| templates()[index].as_ref());
    let Some(template) = template else {
        return vec![LinePiece::Text(spec.format.to_string())];
    };
    let values = event.values();
    let mut pieces = Vec::new();
    let mut text = String::new();
    for slot in &template.slots {
        match slot {
            Slot::List { index, element } => {
                pieces.push(LinePiece::Text(std::mem::take(&mut text)));
                let items = match values.get(*index) {
                    Some(Value::List(items)) => items
                        .iter()
                        .map(|item| {
                            let mut out = String::new();
                            write(element, item, &mut out);
                            out
                        })
                        .collect(),
                    // Not a list where the format has one: as it is, on its own.
                    Some(other) => vec![value_text(other, Radix::Decimal)],
                    None => vec!["?".to_string()],
                };
                pieces.push(LinePiece::List(items));
            }
            other => write_slot(other, &values, &mut text),
        }
    }
    if !text.is_empty() {
        pieces.push(LinePiece::Text(text));
    }
    pieces
}

/// Writes `values` into `template` (a list element's, or a list-free event's).
fn write(template: &Template, values: &[Value], out: &mut String) {
    for slot in &template.slots {
        write_slot(slot, values, out);
    }
}

fn write_slot(slot: &Slot, values: &[Value], out: &mut String) {
    match slot {
        Slot::Text(text) => out.push_str(text),
        Slot::Value { index, radix } => match values.get(*index) {
            Some(value) => out.push_str(&value_text(value, *radix)),
            None => out.push('?'),
        },
        Slot::List { index, element } => {
            out.push('[');
            if let Some(Value::List(items)) = values.get(*index) {
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    write(element, item, out);
                }
            }
            out.push(']');
        }
    }
}

/// One value as text: a number by its radix, a flag, a string as it is.
fn value_text(value: &Value, radix: Radix) -> String {
    let mut out = String::new();
    let _ = match value {
        Value::Unsigned(n) => match radix {
            Radix::Decimal => write!(out, "{n}"),
            Radix::Hex => write!(out, "{n:x}"),
            Radix::PrefixedHex => write!(out, "{n:#x}"),
            Radix::PrefixedBinary => write!(out, "{n:#b}"),
        },
        Value::Bool(b) => write!(out, "{b}"),
        Value::Str(s) => {
            out.push_str(s);
            Ok(())
        }
        Value::List(items) => {
            // A list where the format has a single value: its elements' values.
            let all: Vec<String> = items
                .iter()
                .flatten()
                .map(|v| value_text(v, Radix::Decimal))
                .collect();
            write!(out, "[{}]", all.join(", "))
        }
    };
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::fixtures::event;

    #[test]
    fn every_contract_event_has_a_template() {
        assert_eq!(templates().len(), EVENTS.len());
        for (spec, template) in EVENTS.iter().zip(templates()) {
            let template = template
                .as_ref()
                .unwrap_or_else(|| panic!("{}", spec.format));
            // The name first, then as many places as the event has fields.
            assert!(matches!(&template.slots[0], Slot::Text(t) if t.starts_with(spec.name)));
            let places = template
                .slots
                .iter()
                .filter(|s| !matches!(s, Slot::Text(_)))
                .count();
            assert_eq!(places, spec.fields.len(), "{}", spec.format);
        }
    }

    #[test]
    fn fields_are_written_by_their_hints() {
        let kernel = "Kernel kind=dyn entry_version=4 version=0.11.0 generation=0.11+ segments=2 base=0x800000 entry=0x801234";
        assert_eq!(event(0, kernel).message(), kernel);
        let pieces = event(0, "MemoryMap regions=[0x0-0x9fc00:1, 0x100000-0x4000000:1]").pieces();
        assert_eq!(
            pieces,
            [
                LinePiece::Text("MemoryMap regions=".into()),
                LinePiece::List(vec!["0x0-0x9fc00:1".into(), "0x100000-0x4000000:1".into()]),
            ]
        );
        assert_eq!(value_text(&Value::Unsigned(10), Radix::Hex), "a");
        assert_eq!(
            value_text(&Value::Unsigned(5), Radix::PrefixedBinary),
            "0b101"
        );
    }
}
