//! Build script of the desktop app: Tauri's codegen embeds ui/dist, so a placeholder page
//! is written when the front end was not built yet (scripts/run.sh and scripts/test.sh
//! build it first; `cargo build --workspace` on a fresh clone must still work).
fn main() {
    let dist = std::path::Path::new("ui/dist");
    if !dist.join("index.html").exists() {
        std::fs::create_dir_all(dist).expect("create ui/dist");
        std::fs::write(
            dist.join("index.html"),
            "<!doctype html><title>Hark</title><p>The Hark UI is not built: run <code>npm ci &amp;&amp; npm run build</code> in ui/ and rebuild.</p>",
        )
        .expect("write placeholder ui/dist/index.html");
    }
    println!("cargo:rerun-if-changed=ui/dist");
    println!("cargo:rerun-if-changed=tauri.conf.json");
    tauri_build::build()
}
