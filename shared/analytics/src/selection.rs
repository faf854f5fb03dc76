//! Which metric versions a request names.

use na_storage::plugins::CatalogMetric;

use crate::QueryError;

/// The most metrics one request may name.
pub const MAX_METRICS_PER_CALL: usize = 64;

/// The one metric `spec` names, for a read of one metric (`what`: "a breakdown is of").
///
/// # Errors
/// As [`select_metrics`]; more than one metric named.
pub(crate) fn select_one(
    catalog: &[CatalogMetric],
    spec: &str,
    what: &str,
) -> Result<CatalogMetric, QueryError> {
    let mut metrics = select_metrics(catalog, Some(spec))?;
    match metrics.pop() {
        Some(m) if metrics.is_empty() => Ok(m),
        _ => Err(QueryError::bad(format!(
            "metric={spec:?}: {what} exactly one metric"
        ))),
    }
}

/// The metrics `spec` names (comma-separated `name` or `name@version`; `name` alone means
/// its active version), or every metric of the active plugin versions when `spec` is absent.
///
/// # Errors
/// [`QueryError::BadRequest`] naming the unknown metric or version, a metric with no
/// active version, or a retired version.
pub fn select_metrics(
    catalog: &[CatalogMetric],
    spec: Option<&str>,
) -> Result<Vec<CatalogMetric>, QueryError> {
    let Some(spec) = spec else {
        return Ok(catalog
            .iter()
            .filter(|m| m.state == "active")
            .cloned()
            .collect());
    };
    let asked = spec.split(',').count();
    if asked > MAX_METRICS_PER_CALL {
        return Err(QueryError::bad(format!(
            "metrics= names {asked} metrics: at most {MAX_METRICS_PER_CALL} per call (leave \
             metrics out for every active metric)"
        )));
    }
    let mut out: Vec<CatalogMetric> = Vec::new();
    for item in spec.split(',') {
        if !well_formed(item) {
            return Err(QueryError::bad(format!(
                "metrics={spec:?}: {item:?} is not a metric name (lowercase letters, digits and \
                 _, then optionally @version); separate several with commas, no spaces, or \
                 leave metrics out for every active metric"
            )));
        }
        let (name, version) = match item.split_once('@') {
            Some((n, v)) => {
                let v = v.parse::<i32>().map_err(|_| {
                    QueryError::bad(format!(
                        "metric {item:?}: the version after @ must be a number"
                    ))
                })?;
                (n, Some(v))
            }
            None => (item, None),
        };
        let versions: Vec<&CatalogMetric> = catalog.iter().filter(|m| m.metric == name).collect();
        if versions.is_empty() {
            return Err(QueryError::bad(format!(
                "unknown metric {name:?}; GET /api/v2/analytics/metrics lists them"
            )));
        }
        let known = || {
            versions
                .iter()
                .map(|m| format!("{} ({})", m.id(), m.state))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let chosen = match version {
            Some(v) => versions.iter().find(|m| m.version == v).ok_or_else(|| {
                QueryError::bad(format!("no version {v} of {name}; there are {}", known()))
            })?,
            None => versions
                .iter()
                .filter(|m| m.state == "active")
                .max_by_key(|m| m.version)
                .ok_or_else(|| {
                    QueryError::bad(format!(
                        "{name} has no active version; name one of {}",
                        known()
                    ))
                })?,
        };
        if chosen.state == "retired" {
            return Err(QueryError::bad(format!(
                "{} is retired; name one of {}",
                chosen.id(),
                known()
            )));
        }
        if !out.iter().any(|m| m.series == chosen.series) {
            out.push((*chosen).clone());
        }
    }
    Ok(out)
}

/// `name` or `name@version`: lowercase letters, digits and `_`; a version of digits.
fn well_formed(item: &str) -> bool {
    let (name, version) = item.split_once('@').unwrap_or((item, "1"));
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !version.is_empty()
        && version.bytes().all(|b| b.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(metric: &str, version: i32, state: &str, series: i32) -> CatalogMetric {
        CatalogMetric {
            metric: metric.into(),
            version,
            plugin: "p".into(),
            plugin_version: version,
            state: state.into(),
            series,
            aggregation: "count".into(),
            unit: "events".into(),
            description: String::new(),
            dimensions: vec![],
            recomputed: true,
            quarantined: None,
        }
    }

    #[test]
    fn names_resolve_to_versions() {
        let cat = vec![
            m("likes", 1, "active", 1),
            m("likes", 2, "shadow", 2),
            m("zaps", 1, "retired", 3),
            m("notes", 1, "active", 4),
        ];
        let ids = |spec| {
            select_metrics(&cat, spec)
                .map(|v| v.iter().map(CatalogMetric::id).collect::<Vec<_>>())
                .map_err(|e| e.to_string())
        };
        assert_eq!(ids(None).unwrap(), ["likes@1", "notes@1"]);
        assert_eq!(
            ids(Some("likes@2,notes,likes")).unwrap(),
            ["likes@2", "notes@1", "likes@1"]
        );
        for malformed in [
            "",
            "likes,",
            "likes@2, notes",
            "Likes",
            "likes@",
            "@2",
            "likes@x",
        ] {
            assert!(
                ids(Some(malformed))
                    .unwrap_err()
                    .contains("is not a metric name"),
                "{malformed:?}"
            );
        }
        assert!(
            ids(Some("nope"))
                .unwrap_err()
                .contains("unknown metric \"nope\"")
        );
        assert!(
            ids(Some("likes@9"))
                .unwrap_err()
                .contains("likes@1 (active), likes@2 (shadow)")
        );
        assert!(
            ids(Some("likes@99999999999"))
                .unwrap_err()
                .contains("must be a number")
        );
        assert!(ids(Some("zaps")).unwrap_err().contains("no active version"));
        assert!(ids(Some("zaps@1")).unwrap_err().contains("retired"));
    }
}
