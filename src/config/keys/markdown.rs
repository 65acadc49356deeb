//! docs/configuration.md's table of keys, made from [`KEYS`].

use super::{env_variable, DefaultValue, KEYS};

/// The configuration table of docs/configuration.md, made from [`KEYS`] (a test holds the page to it).
pub fn markdown_table() -> String {
    let mut table = String::from(
        "| key (file) | variable | flag | default | meaning |\n|---|---|---|---|---|\n",
    );
    for key in KEYS {
        let variables: Vec<String> = std::iter::once(env_variable(key.name))
            .chain(key.seed_variables.iter().map(|v| v.to_string()))
            .map(|v| format!("`{v}`"))
            .collect();
        let flag = key.flag.map_or(String::new(), |f| format!("`--{f}`"));
        let default = match key.default {
            DefaultValue::Required => "— (required)".to_owned(),
            DefaultValue::Absent => "none".to_owned(),
            DefaultValue::Text(text) => format!("`{text}`"),
        };
        let restart = if key.restart { "; needs a restart" } else { "" };
        table += &format!(
            "| `{}` | {} | {flag} | {default} | {}{restart} |\n",
            key.name,
            variables.join(", "),
            key.doc
        );
    }
    table
}
