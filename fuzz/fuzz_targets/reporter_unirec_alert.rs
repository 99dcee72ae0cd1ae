//! Record bytes in the template each UniRec reporter requires: conversion
//! to IDEA never panics.
#![no_main]
use libfuzzer_sys::fuzz_target;
use report2idea::reporters::{
    amplification::AmplificationReporter, bruteforce::BruteforceReporter, ddos::DdosReporter,
    haddrscan::HaddrscanReporter, hoststats::HoststatsReporter, miner::MinerReporter,
};
use report2idea::{Alert, IdeaTime, InputKind, Reporter, UniRecAlert};
use std::sync::OnceLock;
use unirec::{RecordRef, Template};

/// The reporter's required template, parsed once per reporter type.
fn ideas<R: Reporter>(mut r: R, t: &'static OnceLock<Option<Template>>, data: &[u8]) {
    let t = t.get_or_init(|| match r.input() {
        InputKind::UniRec(spec) => Template::parse(spec).ok(),
        InputKind::Json(_) => None,
    });
    let Some(t) = t else { return };
    let Ok(rec) = RecordRef::new_checked(t, data) else {
        return;
    };
    if let Ok(ideas) = r.convert_all(&Alert::UniRec(UniRecAlert { rec })) {
        for i in ideas {
            let _ = i.check_times(IdeaTime::now());
            let _ = i.to_json().to_string();
        }
    }
}

static T: [OnceLock<Option<Template>>; 6] = [const { OnceLock::new() }; 6];

fuzz_target!(|data: &[u8]| {
    ideas(AmplificationReporter, &T[0], data);
    ideas(BruteforceReporter, &T[1], data);
    ideas(DdosReporter, &T[2], data);
    ideas(HaddrscanReporter { aggr_win: 300 }, &T[3], data);
    ideas(HoststatsReporter, &T[4], data);
    ideas(MinerReporter, &T[5], data);
});
