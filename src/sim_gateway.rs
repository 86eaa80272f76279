//! `ibflow sim-gateway`: the CP Gateway simulator on 127.0.0.1.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use chrono::{DateTime, NaiveDate, Utc};
use gateway_sim::{GatewayConfig, PacingConfig, ServerLimits};

/// Flags of `ibflow sim-gateway`.
#[derive(Debug, clap::Args)]
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
    let cfg = GatewayConfig {
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
        println!("  replay     {} (Ctrl-C to stop)", gw.sim_time());
    })
    .context("sim-gateway")
}
