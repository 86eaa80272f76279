//! `report.html`: one self-contained page (inline CSS, the plot as a
//! base64 data URI, no script and no external reference) that can be
//! mailed or archived as a single file.

use std::fmt::Write as _;

use base64::Engine as _;

use super::format::{fixed, percent, Norm, Rfc3339};
use super::plot::{PlotScales, PNG_SIZE};
use super::trades::ClosedTrade;
use super::Summary;

/// Escapes text for HTML element content and double-quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\
table{border-collapse:collapse;margin:0.5em 0 1.5em}\
td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}\
th{background:#f2f2f2}td.k,th.k{text-align:left}\
img{border:1px solid #ccc;max-width:100%}\
p.note{color:#555;font-size:90%}";

/// Renders the report. `trades` are the first trades of the run (at most
/// [`super::HTML_TRADES`]); `png` is the encoded plot.
pub fn render(
    summary: &Summary,
    trades: &[ClosedTrade],
    png: &[u8],
    scales: &PlotScales,
) -> String {
    let mut h = String::with_capacity(png.len() * 4 / 3 + 16 * 1024);
    let title = format!("ibflow backtest: {}", summary.strategy);
    // Writing to a String cannot fail; the results are ignored on purpose.
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>{t}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n<h1>{t}</h1>\n",
        t = escape(&title)
    );
    let _ = writeln!(
        h,
        "<p>Data: {}<br>Commission model: {}</p>",
        escape(&summary.data),
        escape(&summary.commission_model)
    );

    h.push_str("<h2>Summary</h2>\n<table>\n");
    for (k, v) in summary.rows() {
        let _ = writeln!(
            h,
            "<tr><th class=\"k\">{}</th><td>{}</td></tr>",
            escape(k),
            escape(&v)
        );
    }
    h.push_str("</table>\n");

    h.push_str("<h2>Parameters</h2>\n");
    if summary.params.is_empty() {
        h.push_str("<p>None.</p>\n");
    } else {
        h.push_str("<table>\n<tr><th class=\"k\">Name</th><th class=\"k\">Value</th></tr>\n");
        for (k, v) in &summary.params {
            let _ = writeln!(
                h,
                "<tr><td class=\"k\">{}</td><td class=\"k\">{}</td></tr>",
                escape(k),
                escape(v)
            );
        }
        h.push_str("</table>\n");
    }

    h.push_str("<h2>Equity and drawdown</h2>\n");
    let _ = writeln!(
        h,
        "<img width=\"{}\" height=\"{}\" alt=\"Equity curve (top) and drawdown (bottom)\" \
         src=\"data:image/png;base64,{}\">",
        PNG_SIZE.0,
        PNG_SIZE.1,
        base64::engine::general_purpose::STANDARD.encode(png)
    );
    let time = |t: Option<_>| t.map_or_else(|| "-".to_owned(), |t| Rfc3339(t).to_string());
    let _ = writeln!(
        h,
        "<p class=\"note\">Horizontal axis: time, linear, from {} (left) to {} (right). \
         Top: equity in account currency, axis from {} (bottom) to {} (top); the grey line is \
         the initial cash. Bottom: drawdown from the running peak, axis from {} (bottom) to 0% \
         (top). {} plotted points; each is the lowest equity of its bucket of consecutive \
         observations, so troughs are kept.</p>",
        time(scales.start),
        time(scales.end),
        fixed(scales.equity_min, 2),
        fixed(scales.equity_max, 2),
        percent(scales.drawdown_min, 2),
        scales.points
    );

    h.push_str("<h2>Trades</h2>\n");
    let _ = writeln!(
        h,
        "<p class=\"note\">Closed round trips: {}; showing the first {}. {} trade(s) still \
         open at the end are not included.</p>",
        summary.trades,
        trades.len(),
        summary.open_trades
    );
    h.push_str(
        "<table>\n<tr><th class=\"k\">Entry time</th><th class=\"k\">Exit time</th>\
         <th>Conid</th><th class=\"k\">Side</th><th>Qty</th><th>Entry price</th>\
         <th>Exit price</th><th>PnL</th><th>Commission</th></tr>\n",
    );
    for t in trades {
        let _ = writeln!(
            h,
            "<tr><td class=\"k\">{}</td><td class=\"k\">{}</td><td>{}</td><td class=\"k\">{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            Rfc3339(t.entry_time),
            Rfc3339(t.exit_time),
            t.conid,
            t.side.as_str(),
            Norm(t.qty),
            Norm(t.entry_price),
            Norm(t.exit_price),
            Norm(t.pnl),
            Norm(t.commission)
        );
    }
    h.push_str("</table>\n</body>\n</html>\n");
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape(r#"<a href="x">'&'</a>"#),
            "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;"
        );
    }
}
