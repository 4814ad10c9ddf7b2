//! hark-desktop: the Hark softphone with recording controls and, with one switch, the
//! office's PBX. A thin shell of Tauri commands over hark-phone and hark-pbx (through the
//! modules beside this file); the UI (ui/) renders what the events say.

mod library;
mod meter;
mod notify;
mod pbx;
mod phone;
mod player;
mod ring;
mod settings;
mod single;

use serde::Serialize;
use settings::{AccountSettings, Mode, Settings};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use tauri::{AppHandle, Emitter, Manager, State};

type Res<T> = Result<T, String>;

pub struct App {
    data: PathBuf,
    settings: Mutex<Settings>,
    first_launch: Mutex<bool>,
    pbx: tokio::sync::Mutex<Option<pbx::Running>>,
    pbx_status: Mutex<PbxStatus>,
    phone: tokio::sync::Mutex<Option<phone::Runner>>,
    shared: Arc<phone::Shared>,
    player: player::Player,
    meter: Arc<meter::Meter>,
    handle: AppHandle,
}

#[derive(Serialize, Clone, Debug, Default)]
pub struct PbxStatus {
    /// Embedded PBX mode is on.
    pub enabled: bool,
    pub running: bool,
    /// Where SIP listens (e.g. 0.0.0.0:5060).
    pub listen: Option<String>,
    /// What phones on the network register to: IP:PORT.
    pub address: Option<String>,
    pub domain: String,
    pub note: Option<String>,
    pub error: Option<String>,
    pub own_extension: String,
}

#[derive(Serialize, Clone, Debug)]
pub struct AppInfo {
    pub mode: Mode,
    pub first_launch: bool,
    pub data_dir: String,
    pub version: String,
}

impl App {
    fn emit_pbx(&self) {
        let s = self.pbx_status.lock().unwrap().clone();
        let _ = self.handle.emit("pbx-state", s);
    }

    fn settings(&self) -> Settings {
        self.settings.lock().unwrap().clone()
    }

    /// The port from Settings (on HARK_SIP's address, else 0.0.0.0); else HARK_SIP (tests:
    /// 127.0.0.1:0); else None: 5060 or the next free port.
    fn requested_sip(&self) -> Res<Option<SocketAddr>> {
        let env = match std::env::var("HARK_SIP") {
            Ok(s) => Some(s.parse::<SocketAddr>().map_err(|_| format!("HARK_SIP must be ADDR:PORT, got {s}"))?),
            Err(_) => None,
        };
        let port = self.settings().pbx_port;
        if port != 0 {
            let ip = env.map(|a| a.ip()).unwrap_or([0, 0, 0, 0].into());
            return Ok(Some(SocketAddr::new(ip, port)));
        }
        Ok(env)
    }

    async fn start_pbx(&self) -> Res<()> {
        let mut guard = self.pbx.lock().await;
        if let Some(r) = guard.as_ref() {
            if !r.is_finished() {
                return Ok(());
            }
            *guard = None;
        }
        let own = self.settings().embedded;
        {
            let mut st = self.pbx_status.lock().unwrap();
            st.enabled = true;
            st.domain = own.domain.clone();
            st.own_extension = own.user.clone();
        }
        let result = match self.requested_sip() {
            Ok(req) => pbx::start(&self.data, req).await,
            Err(e) => Err(e),
        };
        match result {
            Ok(running) => {
                {
                    let mut st = self.pbx_status.lock().unwrap();
                    st.running = true;
                    st.listen = Some(running.sip.to_string());
                    st.address = Some(SocketAddr::new(pbx::lan_ip(running.sip.ip()), running.sip.port()).to_string());
                    st.note = running.note.clone();
                    st.error = None;
                }
                *guard = Some(running);
                drop(guard);
                self.emit_pbx();
                Ok(())
            }
            Err(e) => {
                {
                    let mut st = self.pbx_status.lock().unwrap();
                    st.running = false;
                    st.error = Some(e.clone());
                }
                self.emit_pbx();
                Err(e)
            }
        }
    }

    async fn stop_pbx(&self) -> Res<()> {
        let running = self.pbx.lock().await.take();
        let r = match running {
            Some(r) => r.stop().await,
            None => Ok(()),
        };
        {
            let mut st = self.pbx_status.lock().unwrap();
            st.running = false;
            st.listen = None;
            st.address = None;
            st.error = r.as_ref().err().cloned();
        }
        self.emit_pbx();
        r
    }

    /// (Re)starts the phone for the current mode.
    async fn start_phone(&self) -> Res<()> {
        if let Some(old) = self.phone.lock().await.take() {
            old.shutdown().await;
        }
        let s = self.settings();
        let target = match s.mode {
            Mode::Embedded => {
                let sip = self.pbx.lock().await.as_ref().map(|r| r.sip).ok_or("the embedded PBX is not running")?;
                let ip = if sip.ip().is_unspecified() { "127.0.0.1".parse().unwrap() } else { sip.ip() };
                phone::Target {
                    server: SocketAddr::new(ip, sip.port()),
                    user: s.embedded.user.clone(),
                    password: s.embedded.password.clone(),
                    domain: s.embedded.domain.clone(),
                    listen: SocketAddr::new(ip, 0),
                }
            }
            Mode::Account => {
                s.validate()?;
                let server: SocketAddr = s.account.server.parse().map_err(|_| "bad server address".to_string())?;
                phone::Target {
                    server,
                    user: s.account.user.clone(),
                    password: s.account.password.clone(),
                    domain: if s.account.domain.trim().is_empty() { server.ip().to_string() } else { s.account.domain.clone() },
                    listen: SocketAddr::new(if server.ip().is_loopback() { server.ip() } else { "0.0.0.0".parse().unwrap() }, 0),
                }
            }
        };
        let runner = phone::start(target, &s, self.shared.clone()).await?;
        *self.phone.lock().await = Some(runner);
        Ok(())
    }

    async fn stop_phone(&self) {
        if let Some(old) = self.phone.lock().await.take() {
            old.shutdown().await;
        }
    }

    /// First launch (no settings): embedded PBX mode with an extension for this user.
    async fn boot(&self) {
        let mut s = self.settings();
        if s.mode == Mode::Embedded {
            let name = std::env::var("USER").unwrap_or_else(|_| "Me".into());
            match pbx::ensure_initialised(&self.data, &name) {
                Ok(Some(acct)) => {
                    s.embedded = AccountSettings { server: String::new(), user: acct.extension, password: acct.password, domain: acct.domain };
                    *self.settings.lock().unwrap() = s.clone();
                    if let Err(e) = s.save(&self.data) {
                        tracing::error!("{e}");
                    }
                }
                Ok(None) => {}
                Err(e) => {
                    self.pbx_status.lock().unwrap().error = Some(e);
                    self.emit_pbx();
                    return;
                }
            }
            if s.pbx_autostart
                && self.start_pbx().await.is_ok()
                && let Err(e) = self.start_phone().await
            {
                self.shared.update(|snap| {
                    snap.registration.state = "failed".into();
                    snap.registration.message = e.clone();
                });
            }
        } else if let Err(e) = self.start_phone().await {
            self.shared.update(|snap| {
                snap.registration.state = "failed".into();
                snap.registration.message = e.clone();
            });
        }
    }

    /// Quit: calls end, the phone's and the PBX's recordings are finalized.
    async fn shutdown(&self) {
        self.player.stop();
        // Hang up every call first (BYE/CANCEL), and give them two seconds to end.
        let calls: Vec<u64> = self.shared.get().calls.iter().map(|c| c.id).collect();
        if !calls.is_empty() {
            if let Some(p) = self.phone.lock().await.as_ref() {
                for c in &calls {
                    let _ = p.hangup(*c);
                }
            }
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(2);
            while !self.shared.get().calls.is_empty() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
        }
        self.stop_phone().await;
        let _ = self.stop_pbx().await;
    }
}

fn with_pbx(app: &App) -> Res<()> {
    if app.settings().mode != Mode::Embedded {
        return Err("this view needs embedded PBX mode (Settings)".into());
    }
    Ok(())
}

// ---- commands: thin calls into the modules above ----

/// When the process started: launch-to-interactive is measured from here.
static STARTED: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

#[tauri::command]
fn app_info(app: State<'_, App>) -> AppInfo {
    // The UI asks this first, once mounted: from then on it answers clicks.
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let ms = STARTED.get().map(|t| t.elapsed().as_millis()).unwrap_or(0);
        eprintln!("hark-desktop: interactive after {ms} ms");
    });
    AppInfo {
        mode: app.settings().mode,
        first_launch: *app.first_launch.lock().unwrap(),
        data_dir: app.data.display().to_string(),
        version: env!("CARGO_PKG_VERSION").into(),
    }
}

#[tauri::command]
fn phone_state(app: State<'_, App>) -> phone::Snapshot {
    app.shared.get()
}

#[tauri::command]
async fn dial(app: State<'_, App>, target: String) -> Res<u64> {
    let guard = app.phone.lock().await;
    guard.as_ref().ok_or("the phone is not running (see Settings)")?.dial(&target, &app.shared).await
}

macro_rules! with_phone {
    ($app:expr, |$p:ident| $body:expr) => {{
        let guard = $app.phone.lock().await;
        let $p = guard.as_ref().ok_or_else(|| "the phone is not running (see Settings)".to_string())?;
        $body
    }};
}

#[tauri::command]
async fn answer(app: State<'_, App>, call: u64) -> Res<()> {
    with_phone!(app, |p| p.answer(call))
}
#[tauri::command]
async fn reject(app: State<'_, App>, call: u64) -> Res<()> {
    with_phone!(app, |p| p.reject(call))
}
#[tauri::command]
async fn hangup(app: State<'_, App>, call: u64) -> Res<()> {
    with_phone!(app, |p| p.hangup(call))
}
#[tauri::command]
async fn hold(app: State<'_, App>, call: u64, on: bool) -> Res<()> {
    with_phone!(app, |p| p.hold(call, on))
}
#[tauri::command]
async fn dtmf(app: State<'_, App>, call: u64, digits: String) -> Res<()> {
    with_phone!(app, |p| p.dtmf(call, &digits))
}
#[tauri::command]
async fn transfer(app: State<'_, App>, call: u64, target: String) -> Res<()> {
    with_phone!(app, |p| p.transfer(call, &target))
}
#[tauri::command]
async fn consult_transfer(app: State<'_, App>, call: u64, target: String) -> Res<u64> {
    with_phone!(app, |p| p.consult(call, &target, &app.shared).await)
}
#[tauri::command]
async fn complete_transfer(app: State<'_, App>, call: u64) -> Res<()> {
    with_phone!(app, |p| p.complete_transfer(call, &app.shared))
}
#[tauri::command]
async fn set_recording(app: State<'_, App>, call: u64, pause: bool, video: Option<bool>) -> Res<()> {
    with_phone!(app, |p| p.recording(call, pause, video.unwrap_or(false), &app.shared))
}
#[tauri::command]
async fn set_mute(app: State<'_, App>, call: u64, on: bool) -> Res<()> {
    with_phone!(app, |p| p.mute(call, on))?;
    app.shared.update(|s| {
        if let Some(c) = s.calls.iter_mut().find(|c| c.id == call) {
            c.muted = on;
        }
    });
    Ok(())
}

#[derive(Serialize)]
struct Extension {
    extension: String,
    name: String,
}

#[tauri::command]
fn extensions(app: State<'_, App>) -> Res<Vec<Extension>> {
    if app.settings().mode != Mode::Embedded {
        return Ok(Vec::new());
    }
    Ok(pbx::extensions(&app.data)?.into_iter().map(|(extension, name)| Extension { extension, name }).collect())
}

#[tauri::command]
fn pbx_status(app: State<'_, App>) -> PbxStatus {
    app.pbx_status.lock().unwrap().clone()
}
#[tauri::command]
async fn pbx_start(app: State<'_, App>) -> Res<()> {
    with_pbx(&app)?;
    app.start_pbx().await?;
    app.start_phone().await
}
#[tauri::command]
async fn pbx_stop(app: State<'_, App>) -> Res<()> {
    app.stop_phone().await;
    app.stop_pbx().await
}
#[tauri::command]
fn pbx_users(app: State<'_, App>) -> Res<Vec<pbx::UserView>> {
    with_pbx(&app)?;
    pbx::users(&app.data)
}
#[tauri::command]
fn pbx_set_user(app: State<'_, App>, ext: String, audio: Option<bool>, video: Option<bool>) -> Res<()> {
    with_pbx(&app)?;
    pbx::set_user(&app.data, &ext, audio, video)
}
#[tauri::command]
fn pbx_add_user(app: State<'_, App>, ext: String, name: String, password: String) -> Res<()> {
    with_pbx(&app)?;
    pbx::add_user(&app.data, &ext, &name, &password)
}
#[tauri::command]
fn pbx_switches(app: State<'_, App>) -> Res<pbx::Switches> {
    with_pbx(&app)?;
    pbx::switches(&app.data)
}
#[tauri::command]
fn pbx_set_company(app: State<'_, App>, audio: Option<bool>, video: Option<bool>) -> Res<()> {
    with_pbx(&app)?;
    pbx::set_company(&app.data, audio, video)
}
#[tauri::command]
fn pbx_set_system(app: State<'_, App>, record_between_external_numbers: bool) -> Res<()> {
    with_pbx(&app)?;
    pbx::set_system(&app.data, record_between_external_numbers)
}

#[tauri::command]
fn recordings_list(app: State<'_, App>) -> Res<Vec<library::Item>> {
    library::list(&app.data, &app.shared.library, app.settings().mode == Mode::Embedded)
}
#[tauri::command]
fn recording_waveform(app: State<'_, App>, id: String) -> Res<player::Waveform> {
    player::waveform(&library::file_of(&app.data, &app.shared.library, &id)?, 600)
}
#[tauri::command]
fn recording_cdr(app: State<'_, App>, id: String) -> Res<serde_json::Value> {
    match library::parse_id(&id)? {
        library::Where::Pbx(n) => {
            let r = pbx::recording(&app.data, n)?;
            serde_json::to_value(pbx::cdr_of(&app.data, &r)?).map_err(|e| e.to_string())
        }
        library::Where::Local(_) => Err("a local recording has no PBX call record".into()),
    }
}
#[tauri::command]
fn recording_export(app: State<'_, App>, id: String) -> Res<String> {
    library::export(&app.data, &app.shared.library, &id)
}
#[tauri::command]
fn recording_delete(app: State<'_, App>, id: String) -> Res<()> {
    if app.player.status().id.as_deref() == Some(id.as_str()) {
        app.player.stop();
    }
    library::delete(&app.data, &app.shared.library, &id)
}

#[tauri::command]
fn player_load(app: State<'_, App>, id: String) -> Res<player::Status> {
    let path = library::file_of(&app.data, &app.shared.library, &id)?;
    let w = player::waveform(&path, 1)?;
    app.player.load(&id, &path, w.duration_ms)?;
    Ok(app.player.status())
}
#[tauri::command]
fn player_play(app: State<'_, App>) -> player::Status {
    app.player.play();
    app.player.status()
}
#[tauri::command]
fn player_pause(app: State<'_, App>) -> player::Status {
    app.player.pause();
    app.player.status()
}
#[tauri::command]
fn player_seek(app: State<'_, App>, ms: u64) -> player::Status {
    app.player.seek(ms);
    app.player.status()
}
#[tauri::command]
fn player_status(app: State<'_, App>) -> player::Status {
    app.player.status()
}

#[tauri::command]
fn settings_get(app: State<'_, App>) -> Settings {
    app.settings()
}

/// Saves the settings and applies them: the phone re-registers; switching to account
/// mode stops the embedded PBX, switching back starts it.
#[tauri::command]
async fn settings_save(app: State<'_, App>, settings: Settings) -> Res<()> {
    settings.validate()?;
    let mut settings = settings;
    let old = app.settings();
    // The embedded account is the app's own business, never the UI's.
    settings.embedded = old.embedded.clone();
    settings.save(&app.data)?;
    *app.settings.lock().unwrap() = settings.clone();
    *app.first_launch.lock().unwrap() = false;
    match settings.mode {
        Mode::Account => {
            app.stop_phone().await;
            app.stop_pbx().await.ok();
            app.pbx_status.lock().unwrap().enabled = false;
            app.emit_pbx();
            app.start_phone().await
        }
        Mode::Embedded => {
            app.stop_phone().await;
            if old.mode != Mode::Embedded || old.pbx_port != settings.pbx_port {
                app.stop_pbx().await.ok();
                if settings.embedded.user.is_empty() {
                    app.boot().await;
                    return Ok(());
                }
            }
            app.start_pbx().await?;
            app.start_phone().await
        }
    }
}

#[derive(Serialize)]
struct Devices {
    inputs: Vec<String>,
    outputs: Vec<String>,
}

/// Audio devices the system offers (hark-phone's cpal backend).
#[tauri::command]
fn audio_devices() -> Devices {
    let (inputs, outputs) = hark_phone::audio::device::list_devices().unwrap_or_default();
    Devices { inputs, outputs }
}

/// Opens the level meter on the chosen microphone (None or "": the default). Opening
/// a device can take a moment (ALSA probes): off the main thread.
#[tauri::command]
async fn meter_start(app: State<'_, App>, device: Option<String>) -> Res<()> {
    let meter = app.meter.clone();
    tauri::async_runtime::spawn_blocking(move || meter.start(device.as_deref())).await.map_err(|e| e.to_string())?
}
#[tauri::command]
fn meter_level(app: State<'_, App>) -> Res<meter::Level> {
    app.meter.level()
}
/// The speaker's level while the test tone plays (dBFS; −96 otherwise).
#[tauri::command]
fn speaker_level(app: State<'_, App>) -> f32 {
    app.meter.speaker_level()
}
#[tauri::command]
fn meter_stop(app: State<'_, App>) {
    app.meter.stop();
}
#[tauri::command]
async fn test_tone(app: State<'_, App>, device: String) -> Res<()> {
    let meter = app.meter.clone();
    tauri::async_runtime::spawn_blocking(move || meter.test_tone(&device)).await.map_err(|e| e.to_string())?
}

#[tauri::command]
async fn quit(app: State<'_, App>) -> Res<()> {
    app.shutdown().await;
    app.handle.exit(0);
    Ok(())
}

fn show_main(app: &AppHandle) {
    if let Some(w) = app.get_webview_window("main") {
        let _ = w.show();
        let _ = w.unminimize();
        let _ = w.set_focus();
    }
}

/// A new incoming call while the person is not looking at Hark (window hidden,
/// minimized or in the background): a desktop notification and the window asks for
/// attention (the taskbar flashes). The ring tone plays either way.
fn alert(app: &AppHandle, calls: &[(u64, String)]) {
    let window = app.get_webview_window("main");
    let away = window.as_ref().is_none_or(|w| {
        notify::away(w.is_visible().unwrap_or(false), w.is_minimized().unwrap_or(false), w.is_focused().unwrap_or(false))
    });
    for (_, peer) in calls {
        tracing::info!(peer, away, "incoming call announced");
        if away {
            notify::incoming_call(peer);
        }
    }
    if away
        && let Some(w) = window
        && let Err(e) = w.request_user_attention(Some(tauri::UserAttentionType::Critical))
    {
        tracing::warn!(error = %e, "the window cannot ask for attention");
    }
}

fn toggle_recording(app: &AppHandle) {
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        let state = handle.state::<App>();
        let Some((call, pause)) = phone::shortcut_target(&state.shared.get()) else { return };
        let guard = state.phone.lock().await;
        if let Some(p) = guard.as_ref() {
            let _ = p.recording(call, pause, false, &state.shared);
        }
    });
}

fn quit_app(app: &AppHandle) {
    let handle = app.clone();
    tauri::async_runtime::spawn(async move {
        handle.state::<App>().shutdown().await;
        handle.exit(0);
    });
}

fn setup_tray(app: &tauri::App) -> tauri::Result<()> {
    use tauri::menu::{Menu, MenuItem};
    use tauri::tray::TrayIconBuilder;
    let show = MenuItem::with_id(app, "show", "Show Hark", true, None::<&str>)?;
    let quit = MenuItem::with_id(app, "quit", "Quit (finalizes recordings)", true, None::<&str>)?;
    let menu = Menu::with_items(app, &[&show, &quit])?;
    let mut tray = TrayIconBuilder::with_id("hark").tooltip("Hark").menu(&menu).on_menu_event(|app, ev| match ev.id.as_ref() {
        "show" => show_main(app),
        "quit" => quit_app(app),
        _ => {}
    });
    if let Some(icon) = app.default_window_icon() {
        tray = tray.icon(icon.clone());
    }
    tray.build(app)?;
    Ok(())
}

fn main() {
    STARTED.get_or_init(std::time::Instant::now);
    // WebKit's accelerated compositing costs ~75 MB in the web process (Mesa, even in
    // software) for a UI of buttons and lists; off unless HARK_WEBKIT_COMPOSITING=1.
    // Without compositing WebKit has no use for its DMA-BUF renderer either, whose EGL
    // set-up costs ~4 MB in the app process.
    if std::env::var_os("WEBKIT_DISABLE_COMPOSITING_MODE").is_none() && std::env::var_os("HARK_WEBKIT_COMPOSITING").is_none() {
        // SAFETY: first thing in main, before any other thread exists.
        unsafe { std::env::set_var("WEBKIT_DISABLE_COMPOSITING_MODE", "1") };
        if std::env::var_os("WEBKIT_DISABLE_DMABUF_RENDERER").is_none() {
            // SAFETY: as above.
            unsafe { std::env::set_var("WEBKIT_DISABLE_DMABUF_RENDERER", "1") };
        }
    }
    // WebKit's memory-pressure monitor reads /proc/meminfo and the cgroup files byte by
    // byte every few seconds in the app process: measurable idle CPU for a page of a few
    // hundred kilobytes.
    if std::env::var_os("WEBKIT_DISABLE_MEMORY_PRESSURE_MONITOR").is_none() {
        // SAFETY: as above, no other thread yet.
        unsafe { std::env::set_var("WEBKIT_DISABLE_MEMORY_PRESSURE_MONITOR", "1") };
    }
    // JavaScriptCore without its JIT tiers: ~6 MB less in the web process, and the UI's
    // scripts (event handlers, a few lists) run fast enough interpreted.
    if std::env::var_os("JSC_useJIT").is_none() {
        // SAFETY: as above, no other thread yet.
        unsafe { std::env::set_var("JSC_useJIT", "0") };
    }
    let filter = tracing_subscriber::EnvFilter::try_from_env("HARK_LOG").unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(false).try_init();

    let data = settings::data_dir();
    if let Err(e) = std::fs::create_dir_all(&data) {
        eprintln!("error: cannot create {}: {e}", data.display());
        std::process::exit(1);
    }
    // Single instance: a second launch shows the first one's window and exits.
    let listener = match single::claim(&data) {
        single::Claim::Other => {
            eprintln!("hark-desktop: already running; showing its window");
            return;
        }
        single::Claim::Ours(l) => l,
    };
    let (settings, first_launch) = match Settings::load(&data) {
        Ok(Some(s)) => (s, false),
        Ok(None) => {
            let s = Settings::default();
            let _ = s.save(&data);
            (s, true)
        }
        Err(e) => {
            eprintln!("warning: {e}; using default settings");
            (Settings::default(), false)
        }
    };

    let app = tauri::Builder::default()
        .plugin(
            tauri_plugin_global_shortcut::Builder::new()
                .with_handler(|app, _shortcut, event| {
                    if event.state() == tauri_plugin_global_shortcut::ShortcutState::Pressed {
                        toggle_recording(app);
                    }
                })
                .build(),
        )
        .setup(move |app| {
            let handle = app.handle().clone();
            let emitter = handle.clone();
            let ringer = ring::Ringer::new();
            let announcer = notify::Announcer::default();
            let shared = phone::Shared::new(
                &data,
                Arc::new(move |snap: &phone::Snapshot| {
                    let _ = emitter.emit("phone-state", snap);
                    // An incoming call rings and brings the window forward (from the tray too).
                    let incoming = snap.calls.iter().any(|c| c.state == "incoming");
                    ringer.set(incoming);
                    let new = announcer.new_incoming(snap);
                    if !new.is_empty() {
                        alert(&emitter, &new);
                    }
                    if incoming {
                        show_main(&emitter);
                    }
                }),
            );
            let shortcut = settings.shortcut.clone();
            app.manage(App {
                data: data.clone(),
                settings: Mutex::new(settings.clone()),
                first_launch: Mutex::new(first_launch),
                pbx: tokio::sync::Mutex::new(None),
                pbx_status: Mutex::new(PbxStatus { enabled: settings.mode == Mode::Embedded, ..Default::default() }),
                phone: tokio::sync::Mutex::new(None),
                shared,
                player: player::Player::new(),
                meter: Arc::new(meter::Meter::default()),
                handle: handle.clone(),
            });
            single::serve(listener, {
                let h = handle.clone();
                move || show_main(&h)
            });
            if let Err(e) = setup_tray(app) {
                tracing::warn!(error = %e, "no tray icon");
            }
            {
                use tauri_plugin_global_shortcut::GlobalShortcutExt;
                if let Err(e) = app.global_shortcut().register(shortcut.as_str()) {
                    tracing::warn!(error = %e, shortcut, "the recording shortcut is not available");
                }
            }
            // SIGTERM/SIGINT (logout, kill): the same clean quit as the tray's Quit.
            let on_signal = handle.clone();
            tauri::async_runtime::spawn(async move {
                use tokio::signal::unix::{signal, SignalKind};
                let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else { return };
                tokio::select! {
                    _ = term.recv() => {}
                    _ = int.recv() => {}
                }
                quit_app(&on_signal);
            });
            tauri::async_runtime::spawn(async move {
                handle.state::<App>().boot().await;
            });
            Ok(())
        })
        .on_window_event(|window, event| {
            // Closing the window keeps Hark (and its PBX) running in the tray.
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                // No microphone stays open behind a hidden window.
                window.app_handle().state::<App>().meter.stop();
                if std::env::var("HARK_EXIT_ON_CLOSE").as_deref() != Ok("1") {
                    let _ = window.hide();
                    api.prevent_close();
                } else {
                    quit_app(window.app_handle());
                    api.prevent_close();
                }
            }
        })
        .invoke_handler(tauri::generate_handler![
            app_info,
            phone_state,
            dial,
            answer,
            reject,
            hangup,
            hold,
            dtmf,
            transfer,
            consult_transfer,
            complete_transfer,
            set_recording,
            set_mute,
            extensions,
            pbx_status,
            pbx_start,
            pbx_stop,
            pbx_users,
            pbx_set_user,
            pbx_add_user,
            pbx_switches,
            pbx_set_company,
            pbx_set_system,
            recordings_list,
            recording_waveform,
            recording_cdr,
            recording_export,
            recording_delete,
            player_load,
            player_play,
            player_pause,
            player_seek,
            player_status,
            settings_get,
            settings_save,
            audio_devices,
            meter_start,
            meter_level,
            meter_stop,
            test_tone,
            speaker_level,
            quit,
        ])
        .build(tauri::generate_context!())
        .unwrap_or_else(|e| {
            eprintln!("error: cannot start Hark: {e}");
            std::process::exit(1);
        });
    app.run(|_, _| {});
}
