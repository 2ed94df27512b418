//! The result table of `cargo xtask bench`: one row per measure, ours against its
//! baseline as a ratio. Its own module so that the parts that measure
//! ([`crate::bench`], [`crate::bench_loaders`]) share it without importing each
//! other.

/// One row of the result table.
pub struct Row {
    pub measure: &'static str,
    pub baseline: String,
    pub ours: String,
    /// ours / baseline, in the unit of the row (time, bytes or throughput).
    pub ratio: f64,
    pub reading: String,
}

/// Prints the table and how to read it.
pub fn print(rows: &[Row]) {
    println!(
        "{:<36} {:<24} {:<24} {:>8}  reading",
        "measure", "baseline", "rusty-loader", "ratio"
    );
    for row in rows {
        println!(
            "{:<36} {:<24} {:<24} {:>7.3}x  {}",
            row.measure, row.baseline, row.ours, row.ratio, row.reading
        );
    }
}
