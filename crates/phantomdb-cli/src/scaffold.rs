//! `phantomdb plugin new`: writes a buildable plugin crate with a sqllogictest file.

use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// Where this build of PhantomDB found the plugin SDK (the default `--sdk` path).
pub fn default_sdk_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../phantomdb-plugin-sdk")
}

/// Writes `<parent>/<name>/` and returns its path.
pub fn new_function_plugin(name: &str, parent: &Path, sdk: &Path) -> Result<PathBuf> {
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        || name.starts_with(|c: char| c.is_ascii_digit())
    {
        bail!("plugin name {name:?} must be lower-case letters, digits and '_' (not starting with a digit)");
    }
    let dir = parent.join(name);
    if dir.exists() {
        bail!("{} already exists", dir.display());
    }
    let sdk = sdk.canonicalize().with_context(|| {
        format!(
            "plugin SDK not found at {} (pass --sdk PATH)",
            sdk.display()
        )
    })?;
    std::fs::create_dir_all(dir.join("src"))?;
    std::fs::create_dir_all(dir.join("tests"))?;
    let sdk_path = sdk.display().to_string().replace('\\', "/");
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            r#"[package]
name = "{name}"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
crate-type = ["cdylib"]

[dependencies]
phantomdb-plugin-sdk = {{ path = "{sdk_path}" }}

# A plugin is built on its own, not as part of an enclosing workspace.
[workspace]
"#
        ),
    )?;
    std::fs::write(
        dir.join("src/lib.rs"),
        format!(
            r#"//! `{name}`: a PhantomDB function plugin.

use phantomdb_plugin_sdk::prelude::*;

#[derive(Default)]
struct Plugin{camel};

impl Plugin for Plugin{camel} {{
    fn register(&self, registrar: &mut Registrar) {{
        let signature = Signature::exact(vec![TypeCode::Utf8], TypeCode::Utf8);
        registrar.scalar_functions(vec![scalar_fn("{name}_hello", signature, |args, _rows| {{
            let names = args[0].as_string::<i32>();
            let out: StringArray = names.iter().map(|n| n.map(|n| format!("hello {{n}}"))).collect();
            Ok(Arc::new(out) as ArrayRef)
        }})]);
    }}
}}

phantomdb_plugin! {{
    name: "{name}",
    version: env!("CARGO_PKG_VERSION"),
    description: "{name} functions",
    host_version: ">=0.1, <0.2",
    plugin: Plugin{camel},
}}
"#,
            camel = camel_case(name)
        ),
    )?;
    std::fs::write(
        dir.join(format!("tests/{name}.slt")),
        format!(
            r#"# Run with: phantomdb test --plugin-dir <dir holding lib{name}.so> tests/{name}.slt

query T
SELECT {name}_hello('world')
----
hello world

query T
SELECT {name}_hello(NULL) IS NULL
----
true
"#
        ),
    )?;
    std::fs::write(
        dir.join("README.md"),
        format!(
            "# {name}\n\nA PhantomDB function plugin.\n\n```sh\ncargo build --release\nmkdir -p plugins && cp target/release/lib{name}.so plugins/\nphantomdb --plugin-dir plugins -c \"SELECT {name}_hello('world')\"\nphantomdb test --plugin-dir plugins tests/{name}.slt\n```\n"
        ),
    )?;
    Ok(dir)
}

fn camel_case(name: &str) -> String {
    name.split('_')
        .map(|part| {
            let mut chars = part.chars();
            chars
                .next()
                .map(|c| c.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}
