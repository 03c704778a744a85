//! The page's one stylesheet, inlined in each page's head (no external assets, so the page
//! works offline and its Content-Security-Policy can forbid every other source).
//!
//! Dark text on a light ground; every text colour against its background is at least 4.5:1
//! (WCAG 2.2 AA): `#1a1d21` on `#f6f7f9` ≈ 16:1, `#4a5260` on `#ffffff` ≈ 7.9:1, links
//! `#0b4f9c` on white ≈ 8.4:1, status badges ≥ 6:1. Focus is a 3 px outline, never removed.

pub(super) const CSS: &str = r#"
*{box-sizing:border-box}
body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1d21;background:#f6f7f9}
header.top{display:flex;align-items:center;gap:1rem;padding:.5rem 1rem;background:#1a1d21;color:#ffffff}
header.top a{color:#ffffff;font-weight:600;text-decoration:none}
header.top .who{margin-left:auto;color:#e6e8eb}
header.top form{margin:0}
main{padding:1rem;max-width:1400px}
h1{font-size:1.35rem;margin:.25rem 0 1rem}
h2{font-size:1.1rem;margin:1.5rem 0 .5rem;border-bottom:1px solid #c9ced6;padding-bottom:.25rem}
h3{font-size:1rem;margin:1rem 0 .25rem}
a{color:#0b4f9c}
figure.chart{margin:.5rem 0;background:#ffffff;padding:.5rem;overflow-x:auto}
figure.chart svg{max-width:100%;height:auto}
table{border-collapse:collapse;width:100%;background:#ffffff}
th,td{text-align:left;vertical-align:top;padding:.3rem .5rem;border-bottom:1px solid #dde1e6}
th{background:#eceff3;font-weight:600}
caption{text-align:left;padding:.25rem 0}
td.mono,code,pre{font-family:ui-monospace,"SFMono-Regular",Consolas,monospace;font-size:12.5px}
pre{margin:.25rem 0;padding:.5rem;background:#ffffff;border:1px solid #dde1e6;overflow:auto;max-height:24rem;white-space:pre-wrap;word-break:break-all}
.muted{color:#4a5260}
.status{display:inline-block;padding:0 .4rem;border-radius:3px;font-weight:600;background:#e6e8eb;color:#1a1d21}
.status-awaiting_approval,.status-held{background:#fff1c2;color:#5c3c00}
.status-succeeded{background:#d8f0dc;color:#0d4a1c}
.status-failed,.status-denied{background:#fbdcdc;color:#7a1010}
.status-running,.status-planning,.status-pending{background:#dce8fb;color:#0b3b7a}
.decision-deny{color:#7a1010;font-weight:600}
.decision-require_approval{color:#5c3c00;font-weight:600}
.step{background:#ffffff;border:1px solid #dde1e6;padding:.5rem .75rem;margin:.5rem 0}
.actions{display:flex;flex-wrap:wrap;gap:1rem;align-items:flex-end;background:#ffffff;border:1px solid #dde1e6;padding:.75rem}
.actions form{margin:0}
.actions p{margin:0 0 .5rem}
button{font:inherit;padding:.35rem .9rem;border:1px solid #1a1d21;border-radius:3px;background:#ffffff;color:#1a1d21;cursor:pointer}
button.primary{background:#0b4f9c;border-color:#0b4f9c;color:#ffffff}
button.danger{background:#9c1c1c;border-color:#9c1c1c;color:#ffffff}
header.top button{background:transparent;color:#ffffff;border-color:#ffffff}
input[type=password]{font:inherit;padding:.35rem;width:28rem;max-width:100%;border:1px solid #4a5260}
label{display:block;font-weight:600;margin:.5rem 0 .25rem}
.error{background:#fbdcdc;color:#7a1010;border:1px solid #7a1010;padding:.5rem .75rem}
a:focus-visible,button:focus-visible,input:focus-visible{outline:3px solid #d97706;outline-offset:2px}
"#;
