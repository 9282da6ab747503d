fn main() {
    // tauri.conf.json lives at the workspace root (beside ui/ and icons/).
    tauri_build::try_build(tauri_build::Attributes::new().config_path("../tauri.conf.json"))
        .expect("tauri-build failed");
}
