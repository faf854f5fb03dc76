//! Checks a line of CloudWatch Embedded Metric Format as CloudWatch Logs would read it:
//! the specification's JSON schema, then the rules it states in prose (every dimension and
//! metric a member of the document; dimension values strings; metric values numbers or
//! arrays of at most 100 numbers).

use serde_json::Value;

const SCHEMA: &str = include_str!("emf-schema.json");

/// The document, or what is wrong with it.
///
/// # Errors
/// The line is not JSON, or not EMF, saying where.
pub fn check(line: &str) -> Result<Value, String> {
    let doc: Value = serde_json::from_str(line).map_err(|e| format!("not JSON: {e}: {line}"))?;
    let schema: Value = serde_json::from_str(SCHEMA).map_err(|e| e.to_string())?;
    let validator = jsonschema::validator_for(&schema).map_err(|e| e.to_string())?;
    if let Some(e) = validator.iter_errors(&doc).next() {
        return Err(format!("{e} at {}: {line}", e.instance_path()));
    }
    let directives = doc["_aws"]["CloudWatchMetrics"]
        .as_array()
        .ok_or("no CloudWatchMetrics")?;
    for directive in directives {
        for set in directive["Dimensions"].as_array().into_iter().flatten() {
            for name in set.as_array().into_iter().flatten() {
                let name = name.as_str().unwrap_or_default();
                match doc.get(name) {
                    Some(Value::String(v)) if !v.is_empty() && v.len() <= 1024 => {}
                    other => {
                        return Err(format!("dimension {name:?} is {other:?}, not a string"));
                    }
                }
            }
        }
        for metric in directive["Metrics"].as_array().into_iter().flatten() {
            let name = metric["Name"].as_str().unwrap_or_default();
            match doc.get(name) {
                Some(Value::Number(_)) => {}
                Some(Value::Array(values))
                    if values.len() <= 100 && values.iter().all(Value::is_number) => {}
                other => {
                    return Err(format!(
                        "metric {name:?} is {other:?}, not a number or up to 100 numbers"
                    ));
                }
            }
        }
    }
    Ok(doc)
}
