//! The seed's `render barchart kind=stacked`, drawn server-side as SVG with plotters: one
//! bar per day, stacked by process, each process one colour (one series of `<rect>`s). The
//! SVG backend writes text as `<text>` and escapes it; plotters sizes text with its built-in
//! estimate, so no font file or system font is read.

use plotters::coord::ranged1d::SegmentValue;
use plotters::prelude::*;
use serde_json::Value;

/// A stacked bar chart: categories along x, one series per stacked category.
#[derive(Debug, Clone, PartialEq)]
pub struct StackedBars {
    pub title: String,
    /// What the bars count (the y axis).
    pub measure: String,
    /// The x positions' labels, in order (days).
    pub x_labels: Vec<String>,
    /// Each stacked category (a process) with its value at each x position.
    pub series: Vec<(String, Vec<f64>)>,
}

impl StackedBars {
    /// The seed's result table as a chart: x = `Date` (day), stacked by `Process`, height =
    /// `PotentialAnomalyCount`. `None` when the table is not the seed's shape.
    pub fn from_seed_table(table: &Value) -> Option<StackedBars> {
        let columns: Vec<&str> = table["columns"]
            .as_array()?
            .iter()
            .map(|c| c["name"].as_str().unwrap_or_default())
            .collect();
        let at = |name: &str| columns.iter().position(|c| *c == name);
        let (date, process, count) = (at("Date")?, at("Process")?, at("PotentialAnomalyCount")?);
        let mut days: Vec<String> = Vec::new();
        let mut series: Vec<(String, Vec<f64>)> = Vec::new();
        let rows = table["rows"].as_array()?;
        let text = |v: &Value| v.as_str().map_or_else(|| v.to_string(), str::to_string);
        for row in rows {
            let day: String = text(&row[date]).chars().take(10).collect();
            if !days.contains(&day) {
                days.push(day);
            }
        }
        days.sort();
        for row in rows {
            let day: String = text(&row[date]).chars().take(10).collect();
            let name = text(&row[process]);
            let value = row[count].as_f64().unwrap_or(1.0);
            let x = days.iter().position(|d| *d == day).unwrap_or(0);
            let entry = match series.iter().position(|(n, _)| *n == name) {
                Some(i) => &mut series[i].1,
                None => {
                    series.push((name, vec![0.0; days.len()]));
                    &mut series.last_mut().expect("just pushed").1
                }
            };
            entry[x] += value;
        }
        Some(StackedBars {
            title: "Potential anomalies by day and process (last 30 days)".into(),
            measure: "new processes".into(),
            x_labels: days,
            series,
        })
    }
}

/// Colour-blind-friendly first (Okabe–Ito), then evenly spaced hues.
fn colour(i: usize, n: usize) -> RGBColor {
    const PALETTE: [RGBColor; 8] = [
        RGBColor(0, 114, 178),
        RGBColor(230, 159, 0),
        RGBColor(0, 158, 115),
        RGBColor(204, 121, 167),
        RGBColor(86, 180, 233),
        RGBColor(213, 94, 0),
        RGBColor(240, 228, 66),
        RGBColor(80, 80, 80),
    ];
    if n <= PALETTE.len() {
        return PALETTE[i];
    }
    let (r, g, b) = HSLColor(i as f64 / n as f64, 0.65, 0.45).rgb();
    RGBColor(r, g, b)
}

/// The chart as a standalone `<svg>` element. Labels come from query results, so they are
/// data: plotters escapes them in `<text>`. An empty chart says so instead of drawing axes.
pub fn chart_svg(bars: &StackedBars) -> String {
    let mut svg = String::new();
    let drawn = draw(bars, &mut svg);
    match drawn {
        Ok(()) => svg,
        Err(e) => message_svg(&format!("the chart could not be drawn: {e}")),
    }
}

fn draw(bars: &StackedBars, out: &mut String) -> Result<(), String> {
    if bars.x_labels.is_empty() || bars.series.is_empty() {
        *out = message_svg("No potential anomalies in the window.");
        return Ok(());
    }
    let n = bars.x_labels.len();
    let top = (0..n)
        .map(|x| bars.series.iter().map(|(_, v)| v[x]).sum::<f64>())
        .fold(1.0, f64::max);
    let width = (160 + 90 * n as u32).clamp(480, 1200);
    let root = SVGBackend::with_string(out, (width, 360)).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let labels = bars.x_labels.clone();
    let mut chart = ChartBuilder::on(&root)
        .caption(&bars.title, ("sans-serif", 16))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(44)
        .build_cartesian_2d((0..n).into_segmented(), 0f64..top * 1.15)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(bars.measure.as_str())
        .x_label_formatter(&|v| match v {
            SegmentValue::CenterOf(i) | SegmentValue::Exact(i) => {
                labels.get(*i).cloned().unwrap_or_default()
            }
            SegmentValue::Last => String::new(),
        })
        .draw()
        .map_err(|e| e.to_string())?;
    let mut base = vec![0.0; n];
    let count = bars.series.len();
    for (i, (name, values)) in bars.series.iter().enumerate() {
        let fill = colour(i, count);
        let rects: Vec<Rectangle<(SegmentValue<usize>, f64)>> = values
            .iter()
            .enumerate()
            .filter(|(_, v)| **v > 0.0)
            .map(|(x, v)| {
                let low = base[x];
                base[x] += v;
                let mut r = Rectangle::new(
                    [
                        (SegmentValue::Exact(x), low),
                        (SegmentValue::Exact(x + 1), low + v),
                    ],
                    fill.filled(),
                );
                r.set_margin(0, 0, 14, 14);
                r
            })
            .collect();
        chart
            .draw_series(rects)
            .map_err(|e| e.to_string())?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], fill.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.9))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())?;
    Ok(())
}

/// A small SVG holding one line of text, escaped by hand (plotters is not involved).
fn message_svg(text: &str) -> String {
    format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"480\" height=\"60\" role=\"img\"><text x=\"10\" y=\"35\" font-family=\"sans-serif\" font-size=\"14\">{}</text></svg>",
        super::html::escape(text)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed_table() -> Value {
        json!({
            "columns": [
                {"name": "WeekDate"}, {"name": "Date"}, {"name": "Process"}, {"name": "Account"},
                {"name": "Computer"}, {"name": "PotentialAnomalyCount"}, {"name": "Distribution1day"},
                {"name": "Distribution7days"}, {"name": "Ratio"}
            ],
            "rows": [
                ["2026-11-15T00:00:00Z", "2026-11-19T00:00:00Z", "sqlcmd.exe", "C\\g", "db", 1, 2, 3, 66.7],
                ["2026-11-15T00:00:00Z", "2026-11-20T00:00:00Z", "<script>alert(1)</script>", "C\\a", "web", 1, 3, 6, 50.0],
                ["2026-11-15T00:00:00Z", "2026-11-20T00:00:00Z", "whoami.exe", "C\\a", "web", 1, 3, 6, 50.0]
            ]
        })
    }

    #[test]
    fn the_seed_table_becomes_one_series_per_process_stacked_by_day() {
        let bars = StackedBars::from_seed_table(&seed_table()).unwrap();
        assert_eq!(bars.x_labels, ["2026-11-19", "2026-11-20"]);
        assert_eq!(bars.series.len(), 3);
        assert_eq!(bars.series[0], ("sqlcmd.exe".to_string(), vec![1.0, 0.0]));
        assert!(StackedBars::from_seed_table(&json!({"columns": [], "rows": []})).is_none());
    }

    #[test]
    fn the_svg_has_a_rect_colour_per_series_and_escaped_labels() {
        let svg = chart_svg(&StackedBars::from_seed_table(&seed_table()).unwrap());
        assert!(svg.starts_with("<svg"), "{svg}");
        for i in 0..3 {
            let c = colour(i, 3);
            let fill = format!("fill=\"#{:02X}{:02X}{:02X}\"", c.0, c.1, c.2);
            // One bar per day it has, plus its legend swatch.
            assert!(svg.matches(&fill).count() >= 2, "{fill} in {svg}");
        }
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("2026-11-20"));
    }

    #[test]
    fn an_empty_chart_says_so() {
        let svg = chart_svg(&StackedBars {
            title: "t".into(),
            measure: "m".into(),
            x_labels: vec![],
            series: vec![],
        });
        assert!(svg.contains("No potential anomalies"), "{svg}");
    }
}
