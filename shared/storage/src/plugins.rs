//! The plugin registry's rows. Validation (loading the component, a trial run) happens
//! before, in `na-plugin-registry`; this keeps the rules that need the database: a version
//! is immutable, a metric@version belongs to one plugin, states move forward only.

use chrono::{DateTime, Utc};
use deadpool_postgres::GenericClient as Cached;
use serde::Serialize;
use tokio_postgres::types::Json;

use crate::{Db, Error, Result};

/// A published plugin version, without its artifact.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PluginRecord {
    pub name: String,
    pub version: i32,
    /// sha256 of the component, hex.
    pub content_hash: String,
    pub abi: i32,
    /// What `describe` returned (metrics with their versions, aggregations, units).
    pub description: serde_json::Value,
    pub state: String,
    pub recomputed_at: Option<DateTime<Utc>>,
    pub published_by: String,
    pub published_at: DateTime<Utc>,
    pub activated_at: Option<DateTime<Utc>>,
    pub retired_at: Option<DateTime<Utc>>,
}

/// A version to store.
#[derive(Debug, Clone)]
pub struct NewPlugin<'a> {
    pub name: &'a str,
    pub version: i32,
    pub content_hash: &'a [u8; 32],
    pub artifact: &'a [u8],
    pub abi: i32,
    pub description: &'a serde_json::Value,
    /// (metric, metric version, aggregation), in declaration order.
    pub metrics: Vec<(&'a str, i32, &'a str)>,
    pub published_by: &'a str,
}

/// What publishing did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub enum Published {
    /// A new version.
    Created(PluginRecord),
    /// The same artifact was already published under this version: nothing changed.
    Unchanged(PluginRecord),
}

/// Why a registry change is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryRefusal {
    #[error(
        "{0} is already published with a different artifact (sha256 {1}); publish a new version"
    )]
    VersionTaken(String, String),
    #[error("metric {0} is already defined by plugin {1}; give the metric a new version")]
    MetricTaken(String, String),
    #[error("no plugin {0}")]
    NotFound(String),
    #[error(
        "{0} has not been recomputed yet: its buckets would be empty; run its recompute job first"
    )]
    NotRecomputed(String),
    #[error("{0} is retired; publish a new version instead")]
    Retired(String),
}

const COLUMNS: &str = "name, version, encode(content_hash, 'hex'), abi, description, state, \
                       recomputed_at, published_by, published_at, activated_at, retired_at";

fn record(row: &tokio_postgres::Row) -> PluginRecord {
    PluginRecord {
        name: row.get(0),
        version: row.get(1),
        content_hash: row.get(2),
        abi: row.get(3),
        description: row.get(4),
        state: row.get(5),
        recomputed_at: row.get(6),
        published_by: row.get(7),
        published_at: row.get(8),
        activated_at: row.get(9),
        retired_at: row.get(10),
    }
}

/// Serializes registry changes, so two publishers of one version cannot both win.
const REGISTRY_LOCK: &str = "SELECT pg_advisory_xact_lock(7413002)";

impl Db {
    /// Stores a validated plugin version.
    ///
    /// # Errors
    /// [`Error::Refused`] with [`RegistryRefusal::VersionTaken`] or
    /// [`RegistryRefusal::MetricTaken`]; any database error.
    pub async fn publish_plugin(&self, p: &NewPlugin<'_>) -> Result<Published> {
        let mut conn = self.conn().await?;
        let tx = conn.transaction().await?;
        tx.execute(REGISTRY_LOCK, &[]).await?;
        let id = format!("{}@{}", p.name, p.version);
        let existing = tx
            .query_opt(
                &format!("SELECT {COLUMNS} FROM plugins WHERE name = $1 AND version = $2"),
                &[&p.name, &p.version],
            )
            .await?
            .map(|r| record(&r));
        if let Some(existing) = existing {
            return if existing.content_hash == hex::encode(p.content_hash) {
                Ok(Published::Unchanged(existing))
            } else {
                Err(Error::Refused(RegistryRefusal::VersionTaken(
                    id,
                    existing.content_hash,
                )))
            };
        }
        for (metric, version, _) in &p.metrics {
            let owner: Option<(String, i32)> = tx
                .query_opt(
                    "SELECT plugin_name, plugin_version FROM plugin_metrics
                     WHERE metric = $1 AND metric_version = $2",
                    &[metric, version],
                )
                .await?
                .map(|r| (r.get(0), r.get(1)));
            if let Some((name, v)) = owner {
                return Err(Error::Refused(RegistryRefusal::MetricTaken(
                    format!("{metric}@{version}"),
                    format!("{name}@{v}"),
                )));
            }
        }
        let row = tx
            .query_one(
                &format!(
                    "INSERT INTO plugins (name, version, content_hash, artifact, abi, description, published_by)
                     VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}"
                ),
                &[
                    &p.name,
                    &p.version,
                    &&p.content_hash[..],
                    &p.artifact,
                    &p.abi,
                    &Json(p.description),
                    &p.published_by,
                ],
            )
            .await?;
        for (index, (metric, version, aggregation)) in p.metrics.iter().enumerate() {
            tx.execute(
                "INSERT INTO plugin_metrics (metric, metric_version, plugin_name, plugin_version, metric_index, aggregation)
                 VALUES ($1, $2, $3, $4, $5, $6)",
                &[metric, version, &p.name, &p.version, &(index as i32), aggregation],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(Published::Created(record(&row)))
    }

    /// Every published version, newest first within a name.
    ///
    /// # Errors
    /// Any database error.
    pub async fn list_plugins(&self) -> Result<Vec<PluginRecord>> {
        let conn = self.conn().await?;
        let rows = conn
            .query(
                &format!("SELECT {COLUMNS} FROM plugins ORDER BY name, version DESC"),
                &[],
            )
            .await?;
        Ok(rows.iter().map(record).collect())
    }

    /// The component of a version (for the compactor and the query function to load).
    ///
    /// # Errors
    /// [`RegistryRefusal::NotFound`]; any database error.
    pub async fn plugin_artifact(&self, name: &str, version: i32) -> Result<Vec<u8>> {
        let conn = self.conn().await?;
        artifact(&**conn, name, version).await
    }

    /// Records that a version's buckets have been recomputed (the recompute job's last step).
    ///
    /// # Errors
    /// [`RegistryRefusal::NotFound`]; any database error.
    pub async fn mark_plugin_recomputed(&self, name: &str, version: i32) -> Result<PluginRecord> {
        self.change_plugin(
            name,
            version,
            "UPDATE plugins SET recomputed_at = now() WHERE name = $1 AND version = $2",
        )
        .await
    }

    /// shadow -> active. Refused for a version that has not been recomputed, or is retired;
    /// activating an active version changes nothing.
    ///
    /// # Errors
    /// [`Error::Refused`]; any database error.
    pub async fn activate_plugin(&self, name: &str, version: i32) -> Result<PluginRecord> {
        let current = self.plugin(name, version).await?;
        let id = format!("{name}@{version}");
        match current.state.as_str() {
            "active" => return Ok(current),
            "retired" => return Err(Error::Refused(RegistryRefusal::Retired(id))),
            _ if current.recomputed_at.is_none() => {
                return Err(Error::Refused(RegistryRefusal::NotRecomputed(id)));
            }
            _ => {}
        }
        self.change_plugin(
            name,
            version,
            "UPDATE plugins SET state = 'active', activated_at = now()
             WHERE name = $1 AND version = $2 AND state = 'shadow' AND recomputed_at IS NOT NULL",
        )
        .await
    }

    /// shadow or active -> retired (a retired version is no longer computed or served).
    ///
    /// # Errors
    /// [`RegistryRefusal::NotFound`]; any database error.
    pub async fn retire_plugin(&self, name: &str, version: i32) -> Result<PluginRecord> {
        self.change_plugin(
            name,
            version,
            "UPDATE plugins SET state = 'retired', retired_at = coalesce(retired_at, now())
             WHERE name = $1 AND version = $2",
        )
        .await
    }

    /// One version's record.
    ///
    /// # Errors
    /// [`RegistryRefusal::NotFound`]; any database error.
    pub async fn plugin(&self, name: &str, version: i32) -> Result<PluginRecord> {
        let conn = self.conn().await?;
        conn.query_opt(
            &format!("SELECT {COLUMNS} FROM plugins WHERE name = $1 AND version = $2"),
            &[&name, &version],
        )
        .await?
        .map(|r| record(&r))
        .ok_or_else(|| Error::Refused(RegistryRefusal::NotFound(format!("{name}@{version}"))))
    }

    async fn change_plugin(&self, name: &str, version: i32, sql: &str) -> Result<PluginRecord> {
        let conn = self.conn().await?;
        conn.execute(sql, &[&name, &version]).await?;
        drop(conn);
        self.plugin(name, version).await
    }
}

/// The stored component of `name@version`, read through `client` (a caller inside a
/// transaction reads it there instead of taking a second pooled connection).
///
/// # Errors
/// [`RegistryRefusal::NotFound`]; any database error.
pub async fn artifact(
    client: &impl tokio_postgres::GenericClient,
    name: &str,
    version: i32,
) -> Result<Vec<u8>> {
    client
        .query_opt(
            "SELECT artifact FROM plugins WHERE name = $1 AND version = $2",
            &[&name, &version],
        )
        .await?
        .map(|r| r.get(0))
        .ok_or_else(|| Error::Refused(RegistryRefusal::NotFound(format!("{name}@{version}"))))
}

/// A metric version as the catalog lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CatalogMetric {
    pub metric: String,
    pub version: i32,
    pub plugin: String,
    pub plugin_version: i32,
    /// The plugin version's state: shadow, active or retired.
    pub state: String,
    #[serde(skip)]
    pub series: i32,
    pub aggregation: String,
    pub unit: String,
    pub description: String,
    pub dimensions: Vec<String>,
    /// Its buckets cover the retained facts (a recompute finished).
    pub recomputed: bool,
    /// Its plugin version is quarantined (compaction stopped running it): since when, and
    /// its last failure.
    pub quarantined: Option<(DateTime<Utc>, String)>,
}

impl CatalogMetric {
    /// `name@version`.
    pub fn id(&self) -> String {
        format!("{}@{}", self.metric, self.version)
    }

    pub fn plugin_id(&self) -> String {
        format!("{}@{}", self.plugin, self.plugin_version)
    }
}

/// Every metric version, ordered by plugin, then declaration.
///
/// # Errors
/// Database errors.
pub async fn catalog(client: &impl Cached) -> Result<Vec<CatalogMetric>> {
    let rows = client
        .query(
            &client
                .prepare_cached(
                    "SELECT m.metric, m.metric_version, m.plugin_name, m.plugin_version, p.state,
                    m.series, m.aggregation, coalesce(d->>'unit', ''),
                    coalesce(d->>'description', ''),
                    coalesce(ARRAY(SELECT jsonb_array_elements_text(d->'dimensions')), '{}'),
                    p.recomputed_at IS NOT NULL, s.quarantined_at, coalesce(s.last_error, '')
             FROM plugin_metrics m
             JOIN plugins p ON p.name = m.plugin_name AND p.version = m.plugin_version
             LEFT JOIN compaction_state s
               ON s.plugin_name = m.plugin_name AND s.plugin_version = m.plugin_version
             LEFT JOIN LATERAL (
                 SELECT d FROM jsonb_array_elements(p.description->'metrics') d
                 WHERE d->>'name' = m.metric AND (d->>'version')::int = m.metric_version
             ) x ON true
             ORDER BY m.plugin_name, m.plugin_version, m.metric_index",
                )
                .await?,
            &[],
        )
        .await?;
    Ok(rows
        .iter()
        .map(|r| CatalogMetric {
            metric: r.get(0),
            version: r.get(1),
            plugin: r.get(2),
            plugin_version: r.get(3),
            state: r.get(4),
            series: r.get(5),
            aggregation: r.get(6),
            unit: r.get(7),
            description: r.get(8),
            dimensions: r.get(9),
            recomputed: r.get(10),
            quarantined: r
                .get::<_, Option<DateTime<Utc>>>(11)
                .map(|at| (at, r.get(12))),
        })
        .collect())
}
