//! `ibflow sim-gateway`: the CP Gateway simulator on 127.0.0.1.
//!
//! Defaults of the session schedule: no scheduled daily reset and no
//! session maximum age (`--reset-region none`, `--session-max-age off`).
//! A real gateway always resets at midnight, but the simulator's resets
//! run on the replay clock, and at the speeds scripted runs use (`--speed
//! 86400`, a replay day per real second) a reset every real second would
//! close the websockets and log the session out under every request;
//! realistic runs pass `--reset-region america --session-max-age 24h`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use gateway_sim::{GatewayConfig, PacingConfig, ResetRegion, ServerLimits, NTF_PROMPT_ID};
use rust_decimal::Decimal;

/// Shown after the flags of `ibflow sim-gateway --help`: which questions an
/// order raises, so an operator knows the ids a bot must confirm.
const PROMPTS_HELP: &str = "\
Order prompts the simulator asks by default (answered through
POST /iserver/reply/{id}; a bot confirms them by id, e.g. --confirm o163):
  o163    a limit or stop price more than 3% away from the last price
  o354    no market data yet: an order before its contract's first bar
  o10331  any stop-type order (STP, STOP_LIMIT, TRAIL, TRAILLMT)
Each is asked once per order (or batch) unless suppressed through
POST /iserver/questions/suppress. o383 (size limit) exists but is off.
With --ntf-prompt-above QTY, a larger order is acknowledged, then held
(PreSubmitted) behind an `ntf` server prompt with id o10082 and options
[\"Yes\", \"No\"], answered through POST /iserver/notification.
See docs/sim-gateway-admin.md.";

/// Flags of `ibflow sim-gateway`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = PROMPTS_HELP)]
pub struct Args {
    /// Port on 127.0.0.1 (the real gateway's default is 5000).
    #[arg(long, default_value_t = 5000)]
    pub port: u16,
    /// Bar files or directories (saved history JSON or CSV, as for
    /// `backtest`). Default: the bundled sample.
    #[arg(long)]
    pub data: Vec<PathBuf>,
    /// Replay speed: replay seconds per real second (86400 = a day per
    /// second; 0 pauses).
    #[arg(long, default_value_t = 1.0)]
    pub speed: f64,
    /// Replay clock start, RFC 3339 or YYYY-MM-DD (UTC). Default: the first
    /// bar of the data.
    #[arg(long)]
    pub start: Option<String>,
    /// Account id the simulated user trades.
    #[arg(long, default_value = "DU1234567")]
    pub account: String,
    /// Turn off the spec's pacing limits (429s).
    #[arg(long)]
    pub no_pacing: bool,
    /// Serve HTTPS and WSS with a self-signed certificate generated at
    /// start, like the real gateway (clients must accept it).
    #[arg(long)]
    pub tls: bool,
    /// Session idle timeout in seconds.
    #[arg(long, default_value_t = 360)]
    pub idle_timeout: u64,
    /// Serve the admin API under /sim/admin (fault injection over HTTP:
    /// failing or slow paths, session expiry, dropped websockets, daily
    /// reset, restart; see docs/sim-gateway-admin.md). Loopback only.
    #[arg(long)]
    pub admin: bool,
    /// The most HTTP connections open at once (websockets included); more
    /// are answered 503 and closed.
    #[arg(long, default_value_t = 256)]
    pub max_connections: usize,
    /// Seconds a connection may take to send a request head before it is
    /// closed (half-open connections).
    #[arg(long, default_value_t = 10)]
    pub header_timeout: u64,
    /// Seconds a request body may take to arrive whole (408 beyond).
    #[arg(long, default_value_t = 30)]
    pub body_timeout: u64,
    /// Seconds a kept-alive connection may stay idle before it is closed.
    #[arg(long, default_value_t = 60)]
    pub connection_idle_timeout: u64,
    /// Hold orders whose quantity exceeds QTY behind an `ntf` server
    /// prompt (id o10082, options Yes/No) until POST /iserver/notification
    /// answers it: Yes transmits, No cancels. Default: off.
    #[arg(long, value_name = "QTY")]
    pub ntf_prompt_above: Option<Decimal>,
    /// The region whose midnight, on the replay clock, is IBKR's daily
    /// reset (websockets close, the session times out until ssodh/init),
    /// with a `blt` bulletin before it: america (00:00 US/Eastern), europe
    /// (00:00 Zurich), asia (00:00 Hong Kong) or none. Default none: at
    /// high replay speeds a reset would come every real second.
    #[arg(long, default_value = "none", value_name = "REGION")]
    pub reset_region: String,
    /// How long (replay time) before a scheduled reset its warning
    /// bulletin goes out: a number with s, m or h (90s, 5m, 1h).
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub reset_warning: String,
    /// The longest a session stays authenticated, on the replay clock (the
    /// real gateway: 24h), from the start and from every ssodh/init; then
    /// it times out like a reset. A number with s, m, h or d, or off.
    #[arg(long, default_value = "off", value_name = "DURATION")]
    pub session_max_age: String,
}

/// `90s`, `5m`, `24h`, `1d` (or a bare number of seconds); `off` or `0`
/// for none.
fn parse_duration(flag: &str, s: &str) -> Result<Option<Duration>> {
    let t = s.trim().to_ascii_lowercase();
    if t == "off" || t == "none" || t == "0" {
        return Ok(None);
    }
    let (num, unit) = match t.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => t.split_at(i),
        None => (t.as_str(), "s"),
    };
    let n: u64 = num
        .parse()
        .with_context(|| format!("{flag} {s:?}: expected a number with s, m, h or d"))?;
    let secs = match unit {
        "s" => Some(n),
        "m" => n.checked_mul(60),
        "h" => n.checked_mul(3600),
        "d" => n.checked_mul(86_400),
        _ => bail!("{flag} {s:?}: the unit must be s, m, h or d"),
    };
    match secs {
        Some(secs) if secs > 0 && secs <= 366 * 86_400 => Ok(Some(Duration::from_secs(secs))),
        _ => bail!("{flag} {s:?}: must be between 1s and 366d"),
    }
}

fn parse_region(s: &str) -> Result<Option<ResetRegion>> {
    if s.trim().eq_ignore_ascii_case("none") {
        return Ok(None);
    }
    match ResetRegion::parse(s.trim()) {
        Some(r) => Ok(Some(r)),
        None => bail!("--reset-region {s:?}: expected america, europe, asia or none"),
    }
}

fn parse_start(s: &str) -> Result<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let d = NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .with_context(|| format!("--start {s:?} is neither RFC 3339 nor YYYY-MM-DD"))?;
    Ok(d.and_hms_opt(0, 0, 0).context("midnight")?.and_utc())
}

/// Run `ibflow sim-gateway`: serve the simulator in the foreground until
/// the process is stopped.
pub fn run(args: Args) -> Result<()> {
    if !args.speed.is_finite() || args.speed < 0.0 {
        bail!("--speed must be a number >= 0, got {}", args.speed);
    }
    for (flag, v) in [
        ("--header-timeout", args.header_timeout),
        ("--body-timeout", args.body_timeout),
        ("--connection-idle-timeout", args.connection_idle_timeout),
    ] {
        if v == 0 || v > 86_400 {
            bail!("{flag} must be 1 to 86400 seconds, got {v}");
        }
    }
    if args.max_connections == 0 || args.max_connections > 65_536 {
        bail!(
            "--max-connections must be 1 to 65536, got {}",
            args.max_connections
        );
    }
    if let Some(q) = args.ntf_prompt_above {
        if q.is_sign_negative() || !q.fract().is_zero() {
            bail!("--ntf-prompt-above must be a whole number >= 0, got {q}");
        }
    }
    let reset_region = parse_region(&args.reset_region)?;
    let reset_warning =
        parse_duration("--reset-warning", &args.reset_warning)?.unwrap_or(Duration::ZERO);
    if reset_warning >= Duration::from_secs(23 * 3600) {
        bail!("--reset-warning must be shorter than 23h");
    }
    let session_max_age = parse_duration("--session-max-age", &args.session_max_age)?;
    let cfg = GatewayConfig {
        ntf_prompt_above: args.ntf_prompt_above,
        reset_region,
        reset_warning,
        session_max_age,
        port: args.port,
        tls: args.tls,
        data: args.data,
        speed: args.speed,
        start: args.start.as_deref().map(parse_start).transpose()?,
        account: args.account,
        idle_timeout: Duration::from_secs(args.idle_timeout),
        admin: args.admin,
        server: ServerLimits {
            header_timeout: Duration::from_secs(args.header_timeout),
            body_timeout: Duration::from_secs(args.body_timeout),
            idle_timeout: Duration::from_secs(args.connection_idle_timeout),
            max_connections: args.max_connections,
        },
        pacing: if args.no_pacing {
            PacingConfig::off()
        } else {
            PacingConfig::default()
        },
        ..GatewayConfig::default()
    };
    let admin = cfg.admin;
    let ntf_prompt_above = cfg.ntf_prompt_above;
    gateway_sim::serve_forever(cfg, |gw| {
        println!("CP Gateway simulator");
        println!("  REST       {}", gw.base_url());
        println!("  websocket  {}", gw.ws_url());
        let markets: Vec<String> = gw
            .event_markets()
            .iter()
            .map(|m| format!("{} {}", m.symbol, m.conid))
            .collect();
        if !markets.is_empty() {
            println!("  ForecastEx {} (/trsrv/event/...)", markets.join(", "));
        }
        if admin {
            println!("  admin      {}/sim/admin (loopback only)", gw.root_url());
        }
        if let Some(r) = reset_region {
            println!(
                "  reset      daily at 00:00 {} (replay clock)",
                r.tz().name()
            );
        }
        if let Some(q) = ntf_prompt_above {
            println!("  ntf        orders above {q} wait for a {NTF_PROMPT_ID} prompt");
        }
        println!("  replay     {} (Ctrl-C to stop)", gw.sim_time());
    })
    .context("sim-gateway")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        let d = |s: &str| parse_duration("--x", s).unwrap();
        assert_eq!(d("off"), None);
        assert_eq!(d("0"), None);
        assert_eq!(d("90s"), Some(Duration::from_secs(90)));
        assert_eq!(d("5m"), Some(Duration::from_secs(300)));
        assert_eq!(d("24h"), Some(Duration::from_secs(86_400)));
        assert_eq!(d("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(d("45"), Some(Duration::from_secs(45)));
        for bad in ["", "h", "5x", "-1h", "999999999999999999d", "400d"] {
            assert!(parse_duration("--x", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn regions() {
        assert_eq!(parse_region("none").unwrap(), None);
        assert_eq!(
            parse_region("america").unwrap(),
            Some(ResetRegion::NorthAmerica)
        );
        assert_eq!(parse_region("Asia").unwrap(), Some(ResetRegion::Asia));
        assert!(parse_region("mars").is_err());
    }
}
