//! The client side of the control endpoint: `ibflow status`, `ibflow
//! kill`, and the choice the gateway commands make between the bot's
//! gateway proxy and the gateway itself.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use clap::Args;
use ibkr::telemetry::StatusSnapshot;
use ibkr::{BearerToken, ClientConfig};
use serde_json::json;

use crate::config::ConfigFile;

/// How long the client commands wait for the bot to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long they wait for its answer.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(20);

/// Where the bot is: flags every control client command shares.
#[derive(Debug, Args, Clone, Default)]
pub struct BotArgs {
    /// The bot's control address (its `[run] control`), e.g.
    /// 127.0.0.1:9464.
    #[arg(long, env = "IBFLOW_CONTROL", value_name = "ADDR")]
    pub control: Option<String>,
    /// A config file whose `[run] control` (and `control_token`) address
    /// the bot; `--control` and the environment win.
    #[arg(long = "config", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// Flags of `ibflow status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Print the bot's `/status` JSON as it came.
    #[arg(long)]
    pub json: bool,
    /// Where the bot is.
    #[command(flatten)]
    pub bot: BotArgs,
}

/// Flags of `ibflow kill`.
#[derive(Debug, Args)]
pub struct KillArgs {
    /// Why: logged by the bot and shown by `ibflow status`.
    #[arg(long)]
    pub reason: Option<String>,
    /// Where the bot is.
    #[command(flatten)]
    pub bot: BotArgs,
}

/// A bot's control endpoint: its address and the token to show it.
#[derive(Debug, Clone)]
pub struct Bot {
    /// The loopback address it listens on.
    pub addr: SocketAddr,
    /// The bearer token (`IBFLOW_CONTROL_TOKEN`, else the config's).
    pub token: Option<BearerToken>,
}

impl BotArgs {
    /// The bot these flags name: `--control` (or `IBFLOW_CONTROL`), else
    /// the config's `[run] control`; `None` when neither says. A
    /// non-loopback address is an error (the token would leave the
    /// machine).
    pub fn bot(&self) -> Result<Option<Bot>> {
        let file = match &self.config {
            Some(p) => Some(ConfigFile::load(p)?),
            None => None,
        };
        let (from_file, file_token) = match &file {
            Some(f) => (f.run.control.clone(), f.run.control_token.clone()),
            None => (None, None),
        };
        let Some(addr) = self
            .control
            .clone()
            .filter(|a| !a.trim().is_empty())
            .or(from_file)
        else {
            return Ok(None);
        };
        Ok(Some(Bot {
            addr: super::loopback_addr(&addr)?,
            token: super::token(file_token.as_ref()),
        }))
    }

    fn require(&self) -> Result<Bot> {
        self.bot()?.ok_or_else(|| {
            anyhow!(
                "no control address: give --control ADDR, set IBFLOW_CONTROL, or --config FILE \
                 with [run] control"
            )
        })
    }
}

/// What answered on the bot's address.
#[derive(Debug)]
enum Answer {
    /// Nothing listens (connection refused or timed out).
    Nobody(String),
    /// An HTTP answer: status and body.
    Http(u16, Vec<u8>),
}

impl Bot {
    fn http(&self) -> Result<reqwest::Client> {
        reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .timeout(ANSWER_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the HTTP client")
    }

    async fn call(
        &self,
        method: reqwest::Method,
        route: &str,
        body: Option<String>,
    ) -> Result<Answer> {
        let mut req = self
            .http()?
            .request(method, format!("http://{}{route}", self.addr));
        if let Some(t) = &self.token {
            let mut v = reqwest::header::HeaderValue::from_str(&format!("Bearer {}", t.expose()))
                .map_err(|_| anyhow!("the control token is not a valid header value"))?;
            v.set_sensitive(true);
            req = req.header(reqwest::header::AUTHORIZATION, v);
        }
        if let Some(b) = body {
            req = req
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(b);
        }
        match req.send().await {
            Ok(resp) => {
                let status = resp.status().as_u16();
                let body = resp
                    .bytes()
                    .await
                    .map_err(|e| anyhow!("reading the bot's answer: {}", e.without_url()))?;
                Ok(Answer::Http(status, body.to_vec()))
            }
            Err(e) if e.is_connect() || e.is_timeout() => {
                Ok(Answer::Nobody(e.without_url().to_string()))
            }
            Err(e) => Err(anyhow!(
                "asking the bot at {}: {}",
                self.addr,
                e.without_url()
            )),
        }
    }

    /// The answer of a route that must be there: nothing listening and a
    /// refused token are errors with what to do about them.
    async fn must(
        &self,
        method: reqwest::Method,
        route: &str,
        body: Option<String>,
    ) -> Result<(u16, Vec<u8>)> {
        match self.call(method, route, body).await? {
            Answer::Nobody(why) => Err(self.nobody(&why)),
            Answer::Http(401, _) => Err(self.refused()),
            Answer::Http(s, b) => Ok((s, b)),
        }
    }

    fn nobody(&self, why: &str) -> anyhow::Error {
        anyhow!(
            "no bot answers on {}: is `ibflow run` running with [run] control set? ({why})",
            self.addr
        )
    }

    fn refused(&self) -> anyhow::Error {
        anyhow!(
            "the bot refused the token: set IBFLOW_CONTROL_TOKEN (or [run] control_token of \
             --config) to the bot's token"
        )
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")
}

/// `ibflow status`: the bot's `/status` (and `/health`), human-readable
/// or, with `--json`, as the bot sent it.
pub fn status(args: StatusArgs) -> Result<()> {
    let bot = args.bot.require()?;
    runtime()?.block_on(async {
        let (code, body) = bot.must(reqwest::Method::GET, "/status", None).await?;
        if code != 200 {
            bail!(
                "the bot answered /status with HTTP {code}: {}",
                String::from_utf8_lossy(&body)
            );
        }
        let (health_code, health) = bot.must(reqwest::Method::GET, "/health", None).await?;
        if args.json {
            let v: serde_json::Value =
                serde_json::from_slice(&body).context("the bot's /status is not JSON")?;
            println!("{}", serde_json::to_string_pretty(&v)?);
            return Ok(());
        }
        let s: StatusSnapshot =
            serde_json::from_slice(&body).context("the bot's /status is not a status")?;
        let health: serde_json::Value = serde_json::from_slice(&health).unwrap_or(json!({}));
        let health = if health_code == 200 {
            "ok".to_owned()
        } else {
            format!(
                "NOT OK: {}",
                health["reason"].as_str().unwrap_or("unknown reason")
            )
        };
        print_status(&bot, &health, &s);
        Ok(())
    })
}

fn print_status(bot: &Bot, health: &str, s: &StatusSnapshot) {
    let dash = |v: &str| {
        if v.is_empty() {
            "-".to_owned()
        } else {
            v.to_owned()
        }
    };
    println!("Bot            {}", bot.addr);
    println!("Health         {health}");
    println!("Account        {}", s.account.as_deref().unwrap_or("-"));
    let age = s
        .last_message_age_ms
        .map(|ms| format!(" (last message {:.1} s ago)", ms as f64 / 1000.0))
        .unwrap_or_default();
    println!("Websocket      {}{age}", dash(&s.connection));
    println!("Session        {}", dash(&s.session));
    println!("Trading        {}", dash(&s.trading_state));
    if let Some(h) = &s.orders_halted {
        println!("Orders halted  {h}");
    }
    println!(
        "Equity         {}  realized {}  unrealized {}",
        s.equity.round_dp(2),
        s.realized_pnl.round_dp(2),
        s.unrealized_pnl.round_dp(2)
    );
    println!("Uptime         {} s", s.uptime_secs);
    if s.positions.is_empty() {
        println!("Positions      none");
    } else {
        println!("Positions");
        println!("  {:>10} {:>12} {:>12}", "conid", "quantity", "avg_price");
        for p in &s.positions {
            println!("  {:>10} {:>12} {:>12}", p.conid, p.quantity, p.avg_price);
        }
    }
    if s.working_orders.is_empty() {
        println!("Working orders none");
    } else {
        println!("Working orders");
        println!(
            "  {:<28} {:>10} {:<4} {:>10} {:>10} {:>10} {:<16}",
            "coid", "conid", "side", "quantity", "filled", "price", "status"
        );
        for o in &s.working_orders {
            println!(
                "  {:<28} {:>10} {:<4} {:>10} {:>10} {:>10} {:<16}",
                o.coid,
                o.conid,
                o.side,
                o.quantity,
                o.filled,
                o.price
                    .map(|p| p.to_string())
                    .unwrap_or_else(|| "MKT".into()),
                o.status
            );
        }
    }
    let counters: Vec<String> = s.counters.iter().map(|(k, v)| format!("{k}={v}")).collect();
    println!("Counters       {}", counters.join(" "));
}

/// `ibflow kill`: pull the bot's kill switch.
pub fn kill(args: KillArgs) -> Result<()> {
    let bot = args.bot.require()?;
    let body = json!({ "reason": args.reason.clone().unwrap_or_default() }).to_string();
    runtime()?.block_on(async {
        let (code, answer) = bot.must(reqwest::Method::POST, "/kill", Some(body)).await?;
        if code != 202 {
            bail!(
                "the bot answered /kill with HTTP {code}: {}",
                String::from_utf8_lossy(&answer)
            );
        }
        println!(
            "kill switch pulled on the bot at {}: order entry refused, working orders being \
             cancelled",
            bot.addr
        );
        Ok(())
    })
}

/// The client configuration of a gateway command: through the bot named
/// by `bot` when one answers there (a line on stderr says so), else
/// `None` (go to the gateway directly). A bot that refuses the token is an
/// error, not a reason to go around it.
pub fn via_bot(bot: &BotArgs) -> Result<Option<ClientConfig>> {
    let Some(bot) = bot.bot()? else {
        return Ok(None);
    };
    let answer = runtime()?.block_on(bot.call(reqwest::Method::GET, "/health", None))?;
    match answer {
        Answer::Nobody(_) => Ok(None),
        Answer::Http(401, _) => Err(bot.refused()),
        Answer::Http(200 | 503, body) if is_health(&body) => {
            eprintln!(
                "via the bot at {} (its paced gateway client; --direct to bypass)",
                bot.addr
            );
            let mut cfg = ClientConfig::with_base_url(format!("http://{}/gateway", bot.addr));
            cfg.bearer = bot.token.clone();
            // The bot's pacer may hold the query up to its proxy timeout.
            cfg.timeout = super::server::PROXY_TIMEOUT + Duration::from_secs(15);
            cfg.pacing.wait_out_penalty = false;
            Ok(Some(cfg))
        }
        Answer::Http(code, _) => {
            eprintln!(
                "warning: {} answered HTTP {code}, not like an ibflow bot; going to the gateway \
                 directly",
                bot.addr
            );
            Ok(None)
        }
    }
}

fn is_health(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .map(|v| v.get("ok").is_some_and(serde_json::Value::is_boolean))
        .unwrap_or(false)
}
