//! `smtp`: SMTP commands and replies on port 25.
//!
//! Exports (ipfixprobe 5.7's smtp plugin): counts of 2xx–5xx replies,
//! `SMTP_COMMAND_FLAGS` (one bit per command seen: EHLO 0x1, HELO 0x2, MAIL
//! 0x4, RCPT 0x8, DATA 0x10, RSET 0x20 (never set), VRFY 0x40, EXPN 0x80,
//! HELP 0x100, NOOP 0x200, QUIT 0x400, other non-upper-case word 0x8000),
//! the MAIL and RCPT counts, `SMTP_STAT_CODE_FLAGS` (one bit per known reply
//! code, 0x40000000 when a reply mentions "spam", 0x80000000 for other
//! codes), the HELO/EHLO domain and the first sender and recipient (≤ 254
//! bytes each, from after the `:` to the CR).
//!
//! ipfixprobe's rules, followed here: packets from port 25 are replies
//! (`DDD ` or `DDD-` then at least one byte), packets to port 25 commands
//! (a line with a CR; the word ends at the first space of the payload);
//! after DATA every payload is mail data until one that is exactly `.\r\n`;
//! the "spam" search is ipfixprobe's (case-insensitive, restarting without
//! re-testing the mismatching byte); a packet that fails to parse as the
//! first one of a flow leaves what it set in a spare record that the next
//! flow's first parse starts from (ipfixprobe's reused preallocation).
//!
//! Deliberate difference: where ipfixprobe would copy past the payload (a
//! `:` after the CR of a MAIL/RCPT line), the copy stops at the payload's
//! end.

use super::text_common::{atoi, cstr, find_byte, CBuf};
use super::{
    parse_options, ty, Extension, FieldDef, FieldSink, FieldValue, FlowCtx, Hooks, Ie,
    ProcessPlugin, Verdict, PEN_CESNET,
};
use crate::parser::Packet;

pub struct Smtp {
    spare: Option<Box<SmtpExt>>,
}

#[derive(Clone, Debug, Default)]
pub struct SmtpExt {
    code_cnt: [u32; 4],
    command_flags: u32,
    mail_cnt: u32,
    rcpt_cnt: u32,
    code_flags: u32,
    domain: CBuf<255>,
    first_sender: CBuf<255>,
    first_recipient: CBuf<255>,
    data_transfer: bool,
}

const fn ie(id: u16) -> Option<Ie> {
    Some(Ie {
        pen: PEN_CESNET,
        id,
    })
}

pub(crate) const FIELDS: &[FieldDef] = &[
    FieldDef::new("SMTP_2XX_STAT_CODE_COUNT", ty::U32, ie(816)),
    FieldDef::new("SMTP_3XX_STAT_CODE_COUNT", ty::U32, ie(817)),
    FieldDef::new("SMTP_4XX_STAT_CODE_COUNT", ty::U32, ie(818)),
    FieldDef::new("SMTP_5XX_STAT_CODE_COUNT", ty::U32, ie(819)),
    FieldDef::new("SMTP_COMMAND_FLAGS", ty::U32, ie(810)),
    FieldDef::new("SMTP_MAIL_CMD_COUNT", ty::U32, ie(811)),
    FieldDef::new("SMTP_RCPT_CMD_COUNT", ty::U32, ie(812)),
    FieldDef::new("SMTP_STAT_CODE_FLAGS", ty::U32, ie(815)),
    FieldDef::new("SMTP_DOMAIN", ty::STRING, ie(820)),
    FieldDef::new("SMTP_FIRST_SENDER", ty::STRING, ie(813)),
    FieldDef::new("SMTP_FIRST_RECIPIENT", ty::STRING, ie(814)),
];

impl Extension for SmtpExt {
    fn fill(&self, out: &mut dyn FieldSink) {
        for (i, c) in self.code_cnt.iter().enumerate() {
            out.put(i, FieldValue::U32(*c));
        }
        out.put(4, FieldValue::U32(self.command_flags));
        out.put(5, FieldValue::U32(self.mail_cnt));
        out.put(6, FieldValue::U32(self.rcpt_cnt));
        out.put(7, FieldValue::U32(self.code_flags));
        out.put(8, FieldValue::Str(self.domain.as_bytes()));
        out.put(9, FieldValue::Str(self.first_sender.as_bytes()));
        out.put(10, FieldValue::Str(self.first_recipient.as_bytes()));
    }
}

const CMD_EHLO: u32 = 0x0001;
const CMD_HELO: u32 = 0x0002;
const CMD_MAIL: u32 = 0x0004;
const CMD_RCPT: u32 = 0x0008;
const CMD_DATA: u32 = 0x0010;
const CMD_VRFY: u32 = 0x0040;
const CMD_EXPN: u32 = 0x0080;
const CMD_HELP: u32 = 0x0100;
const CMD_NOOP: u32 = 0x0200;
const CMD_QUIT: u32 = 0x0400;
const CMD_UNKNOWN: u32 = 0x8000;
const SC_SPAM: u32 = 0x4000_0000;
const SC_UNKNOWN: u32 = 0x8000_0000;

/// The flag bit of a reply code.
fn code_bit(code: i32) -> u32 {
    const CODES: [i32; 24] = [
        211, 214, 220, 221, 250, 251, 252, 354, 421, 450, 451, 452, 455, 500, 501, 502, 503, 504,
        550, 551, 552, 553, 554, 555,
    ];
    CODES
        .iter()
        .position(|&c| c == code)
        .map_or(SC_UNKNOWN, |i| 1 << i)
}

/// ipfixprobe's case-insensitive search (see the top), NUL ends the text.
fn has_spam(p: &[u8]) -> bool {
    const W: &[u8] = b"spam";
    let mut j = 0;
    for &c in p {
        if c == 0 {
            return false;
        }
        if Some(&c.to_ascii_lowercase()) == W.get(j) {
            j += 1;
            if j == W.len() {
                return true;
            }
        } else {
            j = 0;
        }
    }
    false
}

impl SmtpExt {
    fn parse_reply(&mut self, p: &[u8]) -> bool {
        if p.len() < 5 || !matches!(p.get(3), Some(b' ' | b'-')) {
            return false;
        }
        if !p.iter().take(3).all(u8::is_ascii_digit) {
            return false;
        }
        self.code_flags |= code_bit(atoi(p));
        if has_spam(p) {
            self.code_flags |= SC_SPAM;
        }
        match p.first() {
            Some(d @ b'2'..=b'5') => {
                let i = usize::from(d - b'2');
                if let Some(c) = self.code_cnt.get_mut(i) {
                    *c = c.wrapping_add(1);
                }
                true
            }
            _ => false,
        }
    }

    fn parse_command(&mut self, p: &[u8]) -> bool {
        if p.is_empty() {
            return false;
        }
        if self.data_transfer {
            // ipfixprobe: exactly ".\r\n" (compared as a C string).
            if p != b".\r\n" {
                return false;
            }
            self.data_transfer = false;
            return true;
        }
        let Some(cr) = find_byte(p, b'\r') else {
            return false;
        };
        let space = find_byte(p, b' ');
        let len = space.unwrap_or(cr);
        if len >= 32 {
            return false;
        }
        let word = cstr(p.get(..len).unwrap_or(&[]));
        match word {
            b"HELO" | b"EHLO" => {
                if let (true, Some(sp)) = (self.domain.is_empty(), space) {
                    let rest = p.get(sp..).unwrap_or(&[]);
                    if let Some(cr) = find_byte(rest, b'\r') {
                        self.domain.set_raw(rest.get(1..cr).unwrap_or(&[]));
                    }
                }
                self.command_flags |= if word == b"HELO" { CMD_HELO } else { CMD_EHLO };
            }
            b"RCPT" => {
                self.rcpt_cnt = self.rcpt_cnt.wrapping_add(1);
                if let (true, Some(sp)) = (self.first_recipient.is_empty(), space) {
                    address(&mut self.first_recipient, p, sp);
                }
                self.command_flags |= CMD_RCPT;
            }
            b"MAIL" => {
                self.mail_cnt = self.mail_cnt.wrapping_add(1);
                if let (true, Some(sp)) = (self.first_sender.is_empty(), space) {
                    address(&mut self.first_sender, p, sp);
                }
                self.command_flags |= CMD_MAIL;
            }
            b"DATA" => {
                self.data_transfer = true;
                self.command_flags |= CMD_DATA;
            }
            b"VRFY" => self.command_flags |= CMD_VRFY,
            b"EXPN" => self.command_flags |= CMD_EXPN,
            b"HELP" => self.command_flags |= CMD_HELP,
            b"NOOP" => self.command_flags |= CMD_NOOP,
            b"QUIT" => self.command_flags |= CMD_QUIT,
            w => {
                if !w.iter().all(u8::is_ascii_uppercase) {
                    self.command_flags |= CMD_UNKNOWN;
                }
            }
        }
        true
    }

    fn update(&mut self, pkt: &Packet) -> bool {
        if pkt.src_port == 25 {
            self.parse_reply(pkt.payload())
        } else if pkt.dst_port == 25 {
            self.parse_command(pkt.payload())
        } else {
            false
        }
    }
}

/// MAIL/RCPT: from after the first `:` following the space to the first CR
/// from the space on.
fn address(dst: &mut CBuf<255>, p: &[u8], sp: usize) {
    let colon = p
        .get(sp + 1..)
        .and_then(|r| find_byte(r, b':'))
        .map(|c| c + sp + 1);
    let cr = p
        .get(sp..)
        .and_then(|r| find_byte(r, b'\r'))
        .map(|c| c + sp);
    if let (Some(colon), Some(cr)) = (colon, cr) {
        let start = colon + 1;
        let v = if start <= cr {
            p.get(start..cr)
        } else {
            // ipfixprobe copies the most it may from `start` on.
            p.get(start..)
        };
        dst.set_raw(v.unwrap_or(&[]));
    }
}

impl Smtp {
    pub fn create(opts: &str) -> Result<Box<dyn ProcessPlugin>, String> {
        parse_options(opts, &[])?;
        Ok(Box::new(Smtp { spare: None }))
    }

    fn add_new(&mut self, f: FlowCtx<'_>, pkt: &Packet) {
        let mut rec = self.spare.take().unwrap_or_default();
        if rec.update(pkt) {
            f.exts.add(*rec);
        } else {
            self.spare = Some(rec);
        }
    }
}

fn is_smtp(pkt: &Packet) -> bool {
    pkt.src_port == 25 || pkt.dst_port == 25
}

impl ProcessPlugin for Smtp {
    fn name(&self) -> &'static str {
        "smtp"
    }
    fn fields(&self) -> &'static [FieldDef] {
        FIELDS
    }
    fn hooks(&self) -> Hooks {
        Hooks::POST_CREATE | Hooks::PRE_UPDATE
    }
    fn post_create(&mut self, f: FlowCtx<'_>, pkt: &Packet) -> Verdict {
        if is_smtp(pkt) {
            self.add_new(f, pkt);
        }
        Verdict::CONTINUE
    }
    fn pre_update(&mut self, f: FlowCtx<'_>, pkt: &mut Packet) -> Verdict {
        if is_smtp(pkt) {
            match f.exts.get_mut::<SmtpExt>() {
                Some(e) => {
                    e.update(pkt);
                }
                None => self.add_new(f, pkt),
            }
        }
        Verdict::CONTINUE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session() {
        let mut e = SmtpExt::default();
        assert!(e.parse_reply(b"220 mx.example ESMTP\r\n"));
        assert!(e.parse_command(b"EHLO client.example\r\n"));
        assert!(e.parse_reply(b"250-mx.example\r\n250 OK\r\n"));
        assert!(e.parse_command(b"MAIL FROM: <a@b>\r\n"));
        assert!(e.parse_command(b"RCPT TO:<c@d>\r\n"));
        assert!(e.parse_command(b"RCPT TO:<e@f>\r\n"));
        assert!(e.parse_command(b"DATA\r\n"));
        assert!(e.parse_reply(b"354 go\r\n"));
        assert!(!e.parse_command(b"Subject: x\r\n\r\nhello\r\n"));
        assert!(e.parse_command(b".\r\n"));
        assert!(e.parse_reply(b"550 spam rejected\r\n"));
        assert!(e.parse_command(b"auth plain\r\n"));
        assert!(e.parse_command(b"QUIT\r\n"));
        assert_eq!(e.domain.as_bytes(), b"client.example");
        assert_eq!(e.first_sender.as_bytes(), b" <a@b>");
        assert_eq!(e.first_recipient.as_bytes(), b"<c@d>");
        assert_eq!((e.mail_cnt, e.rcpt_cnt), (1, 2));
        assert_eq!(e.code_cnt, [2, 1, 0, 1]);
        assert_eq!(
            e.command_flags,
            CMD_EHLO | CMD_MAIL | CMD_RCPT | CMD_DATA | CMD_QUIT | CMD_UNKNOWN
        );
        assert_eq!(e.code_flags, 0x4 | 0x10 | 0x80 | 0x40000 | SC_SPAM);
    }

    #[test]
    fn spam_search_quirk() {
        assert!(has_spam(b"xSpAm"));
        assert!(!has_spam(b"SSPAM"));
        assert!(!has_spam(b"SP\0AM"));
    }

    #[test]
    fn short_and_odd_payloads() {
        let mut e = SmtpExt::default();
        assert!(!e.parse_reply(b"250 "));
        assert!(!e.parse_reply(b"2x0 ok\r\n"));
        assert!(!e.parse_reply(b"999 ok\r\n"));
        assert_eq!(e.code_flags, SC_UNKNOWN);
        assert!(!e.parse_command(b"EHLO"));
        assert!(!e.parse_command(b""));
        assert!(e.parse_command(b"RCPT\r\nTO:x"));
        assert!(e.parse_command(b"MAIL \r\n:abc"));
        assert_eq!(e.first_sender.as_bytes(), b"abc");
        for n in 0..20 {
            let mut e = SmtpExt::default();
            let _ = e.parse_command(&b"HELO a.b\r\nMAIL FROM:<x>\r\n"[..n]);
            let _ = e.parse_reply(&b"250-spam ok\r\n"[..n.min(13)]);
        }
    }
}
