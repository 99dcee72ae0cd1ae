//! A JSON event for the reporters that read JSON (vportscan2idea,
//! blacklist2idea): conversion to IDEA never panics.
#![no_main]
use bl_downloader::ListConfig;
use libfuzzer_sys::fuzz_target;
use report2idea::reporters::{blacklist::BlacklistReporter, vportscan::VportscanReporter};
use report2idea::{Alert, IdeaTime, Reporter};

fn ideas<R: Reporter>(r: &mut R, alert: &Alert<'_>) {
    if let Ok(ideas) = r.convert_all(alert) {
        for i in ideas {
            let _ = i.check_times(IdeaTime::now());
            let _ = i.to_json().to_string();
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(data) else {
        return;
    };
    let alert = Alert::Json(&v);
    ideas(&mut VportscanReporter { aggr_win: 300 }, &alert);
    let mut list = ListConfig::new(2, "Botnet".into(), "https://example.org/l.txt".into());
    list.category = "Intrusion.Botnet".into();
    let mut miner = ListConfig::new(1, "Pools".into(), "file:///x".into());
    miner.category = "Suspicious.Miner".into();
    let lists = [(2, list), (1, miner)].into_iter().collect();
    ideas(&mut BlacklistReporter { lists }, &alert);
});
