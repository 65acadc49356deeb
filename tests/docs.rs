//! Documentation that is derived from code stays equal to it.

use peerscope::config::keys;

const BEGIN: &str =
    "<!-- config-table: generated from src/config/keys.rs; tests/docs.rs holds them equal -->\n";
const END: &str = "<!-- end config-table -->";

#[test]
fn the_documented_configuration_table_is_the_key_table() {
    let readme = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/docs/configuration.md"
    ))
    .unwrap();
    let start = readme
        .find(BEGIN)
        .expect("docs/configuration.md has the config-table markers")
        + BEGIN.len();
    let end = start
        + readme[start..]
            .find(END)
            .expect("docs/configuration.md closes the config table");
    let expected = keys::markdown_table();
    // `UPDATE_DOCS=1 cargo test --test docs` writes the table into the page.
    if std::env::var_os("UPDATE_DOCS").is_some() && readme[start..end] != expected {
        let updated = format!("{}{expected}{}", &readme[..start], &readme[end..]);
        std::fs::write(
            concat!(env!("CARGO_MANIFEST_DIR"), "/docs/configuration.md"),
            updated,
        )
        .unwrap();
        return;
    }
    assert!(
        readme[start..end] == expected,
        "docs/configuration.md's table differs from src/config/keys.rs; replace it with:\n{expected}"
    );
}

#[test]
fn every_key_has_a_variable_and_a_documented_default() {
    for key in keys::KEYS {
        assert!(!key.doc.is_empty(), "{} has no doc", key.name);
        assert!(
            keys::env_variable(key.name).starts_with("PEERSCOPE_"),
            "{}",
            key.name
        );
        if let Some(flag) = key.flag {
            assert!(
                !flag.starts_with('-'),
                "{}: flags are written without dashes",
                key.name
            );
        }
    }
}
