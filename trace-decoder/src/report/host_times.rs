//! What the host saw of a live stream, for the report: its arrival times in
//! microseconds, and the stages only the host can time (the firmware before the
//! loader, the kernel after it); none for a stream that did not arrive as QEMU sent
//! it.

use std::time::Duration;

use serde::Serialize;

use rusty_loader::wire::LoaderEvent;

use super::format::{micros, round_ns, Clock};
use crate::decode::{Event, HostTimes};

/// Host-side times, in microseconds since the host began reading, and the stages
/// derived from them; all `None` unless the host read the stream live.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct HostReport {
    /// Whether the host saw the stream as QEMU sent it. Not for a recording, nor for
    /// a stream that arrived in one burst (buffered before it was read, as when a
    /// slow-starting reader is piped QEMU's output): their arrival times say when
    /// the reader got the bytes, not when the loader sent them, so every time below
    /// is then `None`.
    pub live: bool,
    /// The stream's first byte.
    pub first_byte_us: Option<f64>,
    /// Arrival of `LoaderStart`.
    pub loader_start_us: Option<f64>,
    /// Arrival of `HandOver`.
    pub hand_over_us: Option<f64>,
    /// The kernel's first output.
    pub first_kernel_output_us: Option<f64>,
    /// The end of the stream.
    pub end_us: Option<f64>,
    /// Firmware time: `LoaderStart`'s arrival minus the loader's own time to it,
    /// clamped at 0. Needs the TSC frequency.
    pub firmware_us: Option<f64>,
    /// From the hand-over's arrival to the kernel's first output; `None` also when
    /// both came in one read (`hand_over_us` = `first_kernel_output_us`): the host
    /// cannot time what lies between them.
    pub kernel_to_first_output_us: Option<f64>,
    /// From the hand-over's arrival to the end of the stream.
    pub kernel_to_exit_us: Option<f64>,
}

/// Whether the events arrived as the loader sent them: the loader's time from the
/// first event timed when sent to the hand-over (or to its last event, and the end
/// of the stream) must show in their arrival times. A stream buffered before it was
/// read arrives at once; a live one takes about as long as the loader did (under
/// `-icount` virtual time may run a few times faster than the host's, which is why
/// the bar is a tenth). Spans of less than a millisecond prove nothing either way.
fn arrived_live(host: &HostTimes, events: &[Event], clock: Clock) -> bool {
    let Some(first_arrival) = host.first_timed_event else {
        return false;
    };
    let Some(first) = events.iter().find(|e| e.timed_when_sent()) else {
        return false;
    };
    let hand_over = events
        .iter()
        .find(|e| matches!(e.kind, LoaderEvent::HandOver { .. }));
    let (last, last_arrival) = match (hand_over, host.hand_over) {
        (Some(event), Some(arrival)) => (event, arrival),
        _ => match (events.last(), host.end) {
            (Some(event), Some(arrival)) => (event, arrival),
            _ => return true,
        },
    };
    let loader_ticks = last.timestamp.saturating_sub(first.timestamp);
    let host_us = micros(last_arrival.saturating_sub(first_arrival));
    match clock.us(loader_ticks) {
        Some(loader_us) if loader_us >= 1000.0 => host_us * 10.0 >= loader_us,
        Some(_) => true,
        // Without the frequency: a burst delivers both in the same read.
        None => loader_ticks == 0 || last_arrival != first_arrival,
    }
}

/// Host times in microseconds, and the stages derived from them; none unless the
/// stream arrived live.
pub fn host_report(host: &HostTimes, events: &[Event], clock: Clock) -> HostReport {
    if host.first_byte.is_none() || !arrived_live(host, events, clock) {
        return HostReport::default();
    }
    let first_timed = events.iter().find(|e| e.timed_when_sent());
    let between =
        |from: Option<Duration>, to: Option<Duration>| Some(micros(to?.saturating_sub(from?)));
    // The host saw the first event timed when sent at the loader's time of that
    // event after the entry: the rest before it was firmware.
    let firmware_us = host.first_timed_event.and_then(|arrival| {
        let loader = clock.us(first_timed?.timestamp)?;
        Some(round_ns((micros(arrival) - loader).max(0.0)))
    });
    HostReport {
        live: true,
        first_byte_us: host.first_byte.map(micros),
        loader_start_us: host.loader_start.map(micros),
        hand_over_us: host.hand_over.map(micros),
        first_kernel_output_us: host.first_kernel_output.map(micros),
        end_us: host.end.map(micros),
        firmware_us,
        kernel_to_first_output_us: between(host.hand_over, host.first_kernel_output)
            .filter(|_| host.first_kernel_output != host.hand_over),
        kernel_to_exit_us: between(host.hand_over, host.end),
    }
}
