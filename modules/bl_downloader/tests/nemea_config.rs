//! bl_downloader run with NEMEA's XML configuration as its .sup passes it:
//! `-c bl_downloader_config.xml -r REPO`, plaintext and JSON lists.

use std::process::Command;

#[test]
fn nemea_xml_config_and_repository() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("feodo.txt"), "# Feodo\n192.0.2.1\n198.51.100.0/24\n").unwrap();
    std::fs::write(
        d.join("tfox.json"),
        r#"[{"ip": "203.0.113.5", "port": 8080, "status": "online"},
            {"ip": "203.0.113.6", "port": 80, "status": "offline"}]"#,
    )
    .unwrap();
    let xml = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<configuration>
  <struct name="general">
    <element name="download_interval">10</element>
    <element name="socket_timeout">5</element>
  </struct>
  <struct name="detector_files">
    <element name="IP4">{d}/out/ip4.blist</element>
    <element name="IP6">{d}/out/ip6.blist</element>
    <element name="URL">{d}/out/url.blist</element>
    <element name="DNS">{d}/out/dns.blist</element>
  </struct>
  <struct name="blacklist_array">
    <array type="IP">
      <struct>
        <element name="id">1</element>
        <element name="category">Intrusion.Botnet</element>
        <element name="method">web</element>
        <element name="name">Feodo Tracker</element>
        <element name="file_format">plaintext</element>
        <element name="source">file://{d}/feodo.txt</element>
        <element name="download_interval">10</element>
        <element name="ip_version">4</element>
      </struct>
      <struct>
        <element name="id">3</element>
        <element name="category">Intrusion.Botnet</element>
        <element name="method">web</element>
        <element name="name">ThreatFox</element>
        <element name="file_format">JSON</element>
        <element name="json_address_key">ip</element>
        <element name="json_port_key">port</element>
        <element name="filter_key">status</element>
        <element name="filter_value">online</element>
        <element name="source">{d}/tfox.json</element>
        <element name="download_interval">60</element>
        <element name="ip_version">4</element>
      </struct>
    </array>
    <array type="URL/DNS"></array>
  </struct>
</configuration>
"#,
        d = d.display()
    );
    std::fs::write(d.join("bl_downloader_config.xml"), xml).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_bl_downloader"))
        .arg("--once")
        .arg("-c")
        .arg(d.join("bl_downloader_config.xml"))
        .arg("-r")
        .arg(d.join("repo"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert_eq!(
        std::fs::read_to_string(d.join("out/ip4.blist")).unwrap(),
        "192.0.2.1,1\n198.51.100.0/24,1\n203.0.113.5,4;3:8080\n"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("out/ip6.blist")).unwrap(),
        ""
    );
    assert_eq!(
        std::fs::read_to_string(d.join("repo/ip4/ThreatFox.blist")).unwrap(),
        "203.0.113.5:8080\n"
    );
    assert_eq!(
        std::fs::read_to_string(d.join("repo/ip4/Feodo Tracker.blist")).unwrap(),
        "192.0.2.1:\n198.51.100.0/24:\n"
    );
    // Versioned when git is there (it is wherever the tests run from a clone).
    if Command::new("git").arg("--version").output().is_ok() {
        let log = Command::new("git")
            .arg("-C")
            .arg(d.join("repo"))
            .args(["log", "--oneline"])
            .output()
            .unwrap();
        assert!(
            String::from_utf8_lossy(&log.stdout).contains("Blacklists updated"),
            "{err}"
        );
    }
}
