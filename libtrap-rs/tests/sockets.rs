//! Socket interfaces in one process: several clients, timeouts, blocking modes.
//!
//! TRAP_SOCKET_DIR is process-wide, so all tests share one temporary
//! directory and use distinct socket names.

use libtrap::{DataFormat, Trap, TrapError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

fn setup() {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().expect("temp dir");
        std::env::set_var("TRAP_SOCKET_DIR", d.path());
        d
    });
}

fn fmt() -> DataFormat {
    DataFormat::UniRec("uint32 N".into())
}

fn reader(name: &str) -> std::thread::JoinHandle<Result<Vec<u32>, TrapError>> {
    let spec = format!("u:{name}");
    std::thread::spawn(move || {
        let mut t = Trap::init(&spec, Some(1), Some(0))?;
        let input = &mut t.inputs()[0];
        let mut got = Vec::new();
        loop {
            let m = input.recv()?;
            if m.is_eos() {
                return Ok(got);
            }
            got.push(u32::from_le_bytes(m.data.try_into().expect("4 bytes")));
        }
    })
}

#[test]
fn every_client_gets_every_message() {
    setup();
    let mut t = Trap::init("u:multi", Some(0), Some(1)).unwrap();
    let out = &mut t.outputs()[0];
    out.set_format(fmt()).unwrap();
    let readers: Vec<_> = (0..3).map(|_| reader("multi")).collect();
    // Wait until all three are connected (they join at the next container).
    let start = Instant::now();
    while !t.stats_json().contains("\"num_clients\": 3") {
        let out = &mut t.outputs()[0];
        out.flush().unwrap();
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "{}",
            t.stats_json()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = &mut t.outputs()[0];
    for n in 0..100_000u32 {
        out.send(&n.to_le_bytes()).unwrap();
    }
    t.end(true).unwrap();
    for r in readers {
        let got = r.join().unwrap().unwrap();
        assert_eq!(got, (0..100_000).collect::<Vec<_>>());
    }
}

#[test]
fn input_timeouts_return_instead_of_blocking() {
    setup();
    let mut t = Trap::init("u:nobody_here:timeout=NO_WAIT", Some(1), Some(0)).unwrap();
    let start = Instant::now();
    assert!(matches!(t.inputs()[0].recv(), Err(TrapError::Timeout)));
    assert!(start.elapsed() < Duration::from_millis(500));
    let mut t = Trap::init("u:nobody_here:timeout=300000", Some(1), Some(0)).unwrap();
    let start = Instant::now();
    assert!(matches!(t.inputs()[0].recv(), Err(TrapError::Timeout)));
    let took = start.elapsed();
    assert!(
        took >= Duration::from_millis(250) && took < Duration::from_secs(3),
        "{took:?}"
    );
}

#[test]
fn half_wait_and_no_wait_outputs_never_block_without_clients() {
    setup();
    for mode in ["HALF_WAIT", "NO_WAIT"] {
        let mut t =
            Trap::init(&format!("u:alone_{mode}:timeout={mode}"), Some(0), Some(1)).unwrap();
        let out = &mut t.outputs()[0];
        out.set_format(fmt()).unwrap();
        for n in 0..200_000u32 {
            out.send(&n.to_le_bytes()).unwrap();
        }
        out.flush().unwrap();
        t.end(true).unwrap();
    }
}

#[test]
fn a_required_field_the_sender_lacks_is_named() {
    setup();
    // HALF_WAIT: the only reader refuses the format and leaves before taking
    // anything; under WAIT the output would keep the data for another one.
    let mut t = Trap::init("u:fields:timeout=HALF_WAIT", Some(0), Some(1)).unwrap();
    t.outputs()[0]
        .set_format(DataFormat::UniRec("ipaddr SRC_IP,uint16 SRC_PORT".into()))
        .unwrap();
    let r = std::thread::spawn(|| {
        let mut t = Trap::init("u:fields", Some(1), Some(0))?;
        let input = &mut t.inputs()[0];
        input.set_required(libtrap::Required::UniRec(
            "ipaddr SRC_IP,uint16 DST_PORT".into(),
        ));
        input.recv().map(|_| ())
    });
    let out = &mut t.outputs()[0];
    out.send(&[0; 18]).ok();
    let err = r.join().unwrap().unwrap_err().to_string();
    assert!(
        err.contains("uint16 DST_PORT") && err.contains("format mismatch"),
        "{err}"
    );
    drop(t);
}

#[test]
fn max_clients_refuses_the_extra_ones() {
    setup();
    let mut t = Trap::init("u:few:max_clients=1", Some(0), Some(1)).unwrap();
    t.outputs()[0].set_format(fmt()).unwrap();
    let first = reader("few");
    let start = Instant::now();
    while !t.stats_json().contains("\"num_clients\": 1") {
        t.outputs()[0].send(&7u32.to_le_bytes()).unwrap();
        t.outputs()[0].flush().unwrap();
        assert!(start.elapsed() < Duration::from_secs(10));
        std::thread::sleep(Duration::from_millis(20));
    }
    // A second client is accepted and closed at once, without a hello; it
    // keeps retrying, so give it a short timeout.
    let mut second = Trap::init("u:few:timeout=300000", Some(1), Some(0)).unwrap();
    assert!(matches!(second.inputs()[0].recv(), Err(TrapError::Timeout)));
    t.end(true).unwrap();
    assert!(first.join().unwrap().unwrap().iter().all(|&n| n == 7));
}
