//! Arbitrary payloads through every process plugin of flow_meter, in
//! conversations on the ports the plugins look at (see
//! `flow_meter::fuzzing`): no plugin, hook or field writer panics.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    flow_meter::fuzzing::run_all_plugins(data);
});
