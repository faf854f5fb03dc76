//! `na-keys`: API keys from the command line, against PostgreSQL directly (the same rules
//! as the admin API: `POST /api/v2/admin/keys`, `GET …/keys`, `POST …/keys/{id}/revoke`).
//! The first admin key of a deployment can be made here, or with the bootstrap
//! `ADMIN_TOKEN` through the API.
//!
//! ```sh
//! na-keys create --name dashboard --scope read --expires-in-days 90   # prints the key once
//! na-keys create --name ops --scope admin
//! na-keys create --name batch --scope read --rate-limits costly=100,jobs=5
//! na-keys list
//! na-keys revoke 6f1c…                                                  # refused from the next request on
//! ```
//! Exit status: 0 done, 1 no such key, 2 bad input or a database error.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use na_api_types::{ApiKeyInfo, NewApiKey};
use na_storage::Db;
use query::ApiError;

#[derive(Debug, Parser)]
#[command(name = "na-keys", about = "Make, list and revoke API keys")]
struct Args {
    /// The stack's PostgreSQL. A database that does not exist is an error: this never
    /// creates one.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true, default_value = na_storage::DEFAULT_DATABASE_URL)]
    database_url: String,
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Make a key and print it: it is stored hashed and cannot be shown again.
    Create {
        /// Who or what holds it.
        #[arg(long)]
        name: String,
        /// `read`, `backfill` or `admin`; repeat for several.
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Days until it stops working (default: until revoked).
        #[arg(long)]
        expires_in_days: Option<u32>,
        /// Its own requests per minute by route class, over the deployment's key limits
        /// (`NA_RATE_KEY`): `costly=100,jobs=5`.
        #[arg(long)]
        rate_limits: Option<String>,
    },
    /// Every key, newest first (never the keys themselves).
    List,
    /// End a key at once.
    Revoke {
        /// The key's id (as `list` shows it).
        id: uuid::Uuid,
    },
}

fn line(k: &ApiKeyInfo) -> String {
    let time = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map_or_else(
            || "-".into(),
            |t| t.format("%Y-%m-%d %H:%M:%SZ").to_string(),
        )
    };
    format!(
        "{}\t{}\t{}\tcreated {}\texpires {}\trevoked {}\tlast used {}\tlimits {}",
        k.id.simple(),
        k.name,
        k.scopes.join(","),
        time(Some(k.created_at)),
        time(k.expires_at),
        time(k.revoked_at),
        time(k.last_used_at),
        k.rate_limits.as_deref().unwrap_or("-"),
    )
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("na-keys: {}", e.detail());
            ExitCode::from(if matches!(e, ApiError::NotFound { .. }) {
                1
            } else {
                2
            })
        }
    }
}

async fn run(args: Args) -> Result<(), ApiError> {
    let db = Db::open(&args.database_url, 1).await?;
    match args.command {
        Cmd::Create {
            name,
            scopes,
            expires_in_days,
            rate_limits,
        } => {
            let made = query::keys::create_key(
                &db,
                &NewApiKey {
                    name,
                    scopes,
                    expires_in_days,
                    rate_limits,
                },
            )
            .await?;
            eprintln!("{}", line(&made.info));
            eprintln!("the key (shown this once; send it as Authorization: Bearer <key>):");
            println!("{}", made.key);
        }
        Cmd::List => {
            for key in db.api_keys().await? {
                println!("{}", line(&query::keys::info(key)));
            }
        }
        Cmd::Revoke { id } => match db.revoke_api_key(id).await? {
            Some(key) => println!("revoked {}", line(&query::keys::info(key))),
            None => {
                return Err(ApiError::NotFound {
                    detail: format!("no API key {id}"),
                });
            }
        },
    }
    Ok(())
}
