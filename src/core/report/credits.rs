//! AI credits as people read them: GitHub's API description asks clients to show a task's
//! AI credits (nano units ÷ 1,000,000,000) rounded to one decimal place. This file owns that
//! one rounding, so the step summary, the Action output, `status`, the terminal report, the
//! budget messages and the pull-request status all show the same figure.

/// `1`, `1.5`, `0.1`, `1234.6`: rounded to one decimal place (halves away from zero, so
/// 1.25 is 1.3), a trailing `.0` dropped.
pub fn credits(x: f64) -> String {
    let tenths = if x.is_finite() {
        (x * 10.0).round()
    } else {
        0.0
    };
    let s = format!("{:.1}", tenths / 10.0);
    let s = s.strip_suffix(".0").unwrap_or(&s);
    if s == "-0" {
        "0".to_string()
    } else {
        s.to_string()
    }
}

/// `1 AI credit`, `2.5 AI credits`, `0 AI credits`: the figure of [`credits`] with its unit.
pub fn credits_phrase(x: f64) -> String {
    let figure = credits(x);
    let unit = if figure == "1" {
        "AI credit"
    } else {
        "AI credits"
    };
    format!("{figure} {unit}")
}
