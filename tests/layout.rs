//! The crate's layout (`src/lib.rs`): each folder is one concern, and a module imports only
//! from its own folder or from folders above it in the reading order, so there is no
//! import cycle between folders and the crate reads top to bottom.

use std::path::Path;

/// Top-level modules in reading order; a module may import only from this position or above.
const ORDER: [&str; 13] = [
    "timeline", "sync", "outside", "config", "pull", "figures", "store", "discover", "cycle",
    "act", "ops", "serve", "sidecar",
];

fn rank(module: &str) -> usize {
    ORDER.iter().position(|m| *m == module).unwrap_or_else(|| {
        panic!("module `{module}` is not in the layout order of tests/layout.rs")
    })
}

/// The top-level module a file under `src/` belongs to.
fn home(relative: &Path) -> Option<String> {
    let first = relative.components().next()?.as_os_str().to_str()?;
    let name = first.strip_suffix(".rs").unwrap_or(first);
    (!matches!(name, "lib" | "main")).then(|| name.to_owned())
}

/// Every `crate::<module>` a file's code mentions (imports and paths).
fn mentioned_modules(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (index, _) in text.match_indices("crate::") {
        let preceding = text[..index].chars().last();
        if preceding.is_some_and(|c| c.is_alphanumeric() || c == '_') {
            continue; // `peerscope_crate::` or similar, not our crate
        }
        let rest = &text[index + "crate::".len()..];
        let name: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect();
        if !name.is_empty() {
            found.push(name);
        }
    }
    found
}

fn files(directory: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(directory).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn modules_import_only_from_their_own_folder_or_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let mut upward = Vec::new();
    for path in &all {
        let relative = path.strip_prefix(&src).unwrap();
        let Some(home) = home(relative) else { continue };
        let text = std::fs::read_to_string(path).unwrap();
        for used in mentioned_modules(&text) {
            if rank(&used) > rank(&home) {
                upward.push(format!("{} uses crate::{used}", relative.display()));
            }
        }
    }
    assert!(
        upward.is_empty(),
        "imports against the layout order:\n{}",
        upward.join("\n")
    );
}

#[test]
fn every_top_level_module_is_in_the_layout_order_and_in_lib_rs() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let lib = std::fs::read_to_string(src.join("lib.rs")).unwrap();
    for module in ORDER {
        assert!(
            lib.contains(&format!("pub mod {module};")),
            "lib.rs lacks `pub mod {module};`"
        );
        assert!(
            lib.contains(&format!("[`{module}`]")),
            "lib.rs's map does not describe `{module}`"
        );
    }
    for entry in std::fs::read_dir(&src).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if let Some(home) = home(Path::new(&name)) {
            rank(&home);
        }
    }
}

#[test]
fn anyhow_is_used_only_at_the_binarys_edge() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let users: Vec<String> = all
        .iter()
        .filter(|path| path.file_name().is_some_and(|n| n != "main.rs"))
        .filter(|path| std::fs::read_to_string(path).unwrap().contains("anyhow"))
        .map(|path| path.strip_prefix(&src).unwrap().display().to_string())
        .collect();
    assert!(
        users.is_empty(),
        "the library returns typed errors; anyhow appears in {users:?}"
    );
}

/// The product crate holds the sidecar only: the lab (simulated nodes, demo, benchmarks) is
/// a workspace member of its own that depends on the product, and test-only features of
/// tokio are dev-dependencies, so none of it is compiled into the sidecar binary.
#[test]
fn the_product_depends_on_no_lab_and_no_test_only_feature() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
    let manifest: toml::Table = std::fs::read_to_string(manifest).unwrap().parse().unwrap();
    let dependencies = manifest["dependencies"].as_table().unwrap();
    assert!(!dependencies.contains_key("peerscope-lab"));
    let tokio_features: Vec<&str> = dependencies["tokio"]["features"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    for test_only in ["test-util", "process"] {
        assert!(
            !tokio_features.contains(&test_only),
            "tokio's `{test_only}` is a dev-dependency feature: {tokio_features:?}"
        );
    }
    let lib =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("src/lib.rs")).unwrap();
    assert!(!lib.contains("mod sim"));
}

/// A file a newcomer can read in one sitting: none in the product crate over 600 lines
/// (unit tests live beside their module, in `<module>/tests.rs`, when they would not fit).
#[test]
fn no_source_file_of_the_product_is_over_600_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut all = Vec::new();
    files(&src, &mut all);
    let long: Vec<String> = all
        .iter()
        .map(|path| (path, std::fs::read_to_string(path).unwrap().lines().count()))
        .filter(|(_, lines)| *lines > 600)
        .map(|(path, lines)| format!("{} ({lines} lines)", path.display()))
        .collect();
    assert!(long.is_empty(), "split these: {long:?}");
}
