//! UniRec `time`: 64-bit fixed point, Unix seconds in the high 32 bits and the
//! fraction of a second in units of 2^-32 in the low 32 bits.

use std::fmt;

/// Multiplier that turns nanoseconds into 2^-32 s units (libunirec's constant;
/// with the rounding of [`UrTime::nanos`] it makes ns/µs/ms round trips exact).
const NS_TO_FRAC: u64 = 0x4_4B82_FA0A;

/// A UniRec timestamp.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UrTime(pub u64);

impl UrTime {
    /// From whole seconds and nanoseconds (`ns` < 10^9).
    pub const fn from_secs_nanos(secs: u32, ns: u32) -> UrTime {
        UrTime(((secs as u64) << 32) | ((ns as u64 * NS_TO_FRAC) >> 32))
    }

    pub const fn from_secs_micros(secs: u32, us: u32) -> UrTime {
        UrTime::from_secs_nanos(secs, us * 1000)
    }

    pub const fn from_secs_millis(secs: u32, ms: u32) -> UrTime {
        UrTime::from_secs_nanos(secs, ms * 1_000_000)
    }

    /// Unix seconds.
    pub const fn secs(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// The raw fraction (units of 2^-32 s).
    pub const fn fraction(self) -> u32 {
        self.0 as u32
    }

    /// Nanoseconds within the second (rounded up, as libunirec does).
    pub const fn nanos(self) -> u32 {
        (((self.0 & 0xFFFF_FFFF) * 1_000_000_000 + 0xFFFF_FFFF) >> 32) as u32
    }

    pub const fn micros(self) -> u32 {
        self.nanos() / 1000
    }

    pub const fn millis(self) -> u32 {
        self.nanos() / 1_000_000
    }

    /// Seconds since the epoch as a float (pytrap's `float(UnirecTime)`,
    /// the times of NEMEA's JSON events).
    pub fn as_secs_f64(self) -> f64 {
        f64::from(self.secs()) + f64::from(self.nanos()) / 1e9
    }

    /// Milliseconds since the epoch (for time arithmetic in detectors).
    pub const fn as_millis(self) -> u64 {
        self.secs() as u64 * 1000 + self.millis() as u64
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS.uuuuuu` (UTC, microseconds truncated), the
    /// form logger prints.
    pub fn write_text(self, out: &mut Vec<u8>) {
        let secs = self.secs() as i64;
        let (y, m, d) = civil_from_days(secs.div_euclid(86_400));
        let sod = secs.rem_euclid(86_400) as u32;
        let mut buf = *b"0000-00-00T00:00:00.000000";
        put_digits(&mut buf[0..4], y as u32);
        put_digits(&mut buf[5..7], m);
        put_digits(&mut buf[8..10], d);
        put_digits(&mut buf[11..13], sod / 3600);
        put_digits(&mut buf[14..16], sod / 60 % 60);
        put_digits(&mut buf[17..19], sod % 60);
        put_digits(&mut buf[20..26], self.micros());
        out.extend_from_slice(&buf);
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction][Z]` as UTC, like
    /// `ur_time_from_string`: fields may have fewer digits, up to 9 fraction
    /// digits are used (more are ignored).
    pub fn parse(text: &str) -> Option<UrTime> {
        let mut p = Cursor {
            s: text.as_bytes(),
            i: 0,
        };
        let year = p.number(4)?;
        p.expect(b'-')?;
        let month = p.number(2)?;
        p.expect(b'-')?;
        let day = p.number(2)?;
        p.expect(b'T')?;
        let hour = p.number(2)?;
        p.expect(b':')?;
        let minute = p.number(2)?;
        p.expect(b':')?;
        let second = p.number(2)?;
        if !(1..=12).contains(&month)
            || !(1..=31).contains(&day)
            || hour > 23
            || minute > 59
            || second > 61
        {
            return None;
        }
        let mut ns = 0u32;
        if p.peek() == Some(b'.') {
            p.i += 1;
            let start = p.i;
            let mut digits = 0;
            while let Some(c) = p.peek().filter(u8::is_ascii_digit) {
                if digits < 9 {
                    ns = ns * 10 + u32::from(c - b'0');
                    digits += 1;
                }
                p.i += 1;
            }
            if p.i == start {
                return None;
            }
            ns *= 10u32.pow(9 - digits);
        }
        if matches!(p.peek(), Some(b'Z' | b'z')) {
            p.i += 1;
        }
        if !p.s[p.i..].iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        let days = days_from_civil(i64::from(year), month, day);
        let secs = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
        let secs = u32::try_from(secs).ok()?;
        Some(UrTime::from_secs_nanos(secs, ns))
    }
}

impl fmt::Display for UrTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut buf = Vec::with_capacity(26);
        self.write_text(&mut buf);
        f.write_str(std::str::from_utf8(&buf).map_err(|_| fmt::Error)?)
    }
}

struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn peek(&self) -> Option<u8> {
        self.s.get(self.i).copied()
    }
    fn expect(&mut self, c: u8) -> Option<()> {
        (self.peek()? == c).then(|| self.i += 1)
    }
    /// Up to `max` digits, after optional spaces (strptime's leniency).
    fn number(&mut self, max: usize) -> Option<u32> {
        while self.peek() == Some(b' ') {
            self.i += 1;
        }
        let start = self.i;
        let mut v = 0u32;
        while self.i - start < max {
            match self.peek() {
                Some(c) if c.is_ascii_digit() => {
                    v = v * 10 + u32::from(c - b'0');
                    self.i += 1;
                }
                _ => break,
            }
        }
        (self.i > start).then_some(v)
    }
}

fn put_digits(dst: &mut [u8], mut v: u32) {
    for d in dst.iter_mut().rev() {
        *d = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date; days past the end of a
/// month roll over into the next one, as `timegm` does.
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = i64::from(if m > 2 { m - 3 } else { m + 9 });
    let doy = (153 * mp + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day number counted from 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (yoe + era * 400 + i64::from(m <= 2), m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_fractions() {
        assert_eq!(UrTime::from_secs_millis(0, 500).fraction(), 0x8000_0000);
        assert_eq!(UrTime::from_secs_millis(0, 999).fraction(), 0xffbe_76c8);
        assert_eq!(UrTime::from_secs_micros(0, 123_456).fraction(), 0x1f9a_cffa);
        assert_eq!(
            UrTime::from_secs_nanos(0, 999_999_999).fraction(),
            0xffff_fffb
        );
    }

    #[test]
    fn every_microsecond_round_trips() {
        for us in 0..1_000_000 {
            assert_eq!(UrTime::from_secs_micros(7, us).micros(), us);
        }
        for ms in 0..1000 {
            assert_eq!(UrTime::from_secs_millis(7, ms).millis(), ms);
        }
    }

    #[test]
    fn formats_utc_with_microseconds() {
        let t = UrTime::parse("2018-06-27T16:52:54").unwrap();
        assert_eq!(t.secs(), 1_530_118_374);
        assert_eq!(t.to_string(), "2018-06-27T16:52:54.000000");
        let t = UrTime::from_secs_micros(1_509_060_961, 123_456);
        assert_eq!(t.to_string(), "2017-10-26T23:36:01.123456");
        assert_eq!(UrTime(0).to_string(), "1970-01-01T00:00:00.000000");
        assert_eq!(
            UrTime::from_secs_nanos(u32::MAX, 0).to_string(),
            "2106-02-07T06:28:15.000000"
        );
    }

    #[test]
    fn parses_fractions_suffixes_and_short_fields() {
        let p = |s| UrTime::parse(s).map(|t: UrTime| (t.secs(), t.nanos()));
        assert_eq!(
            p("2020-01-01T00:00:01.5"),
            Some((1_577_836_801, 500_000_000))
        );
        assert_eq!(
            p("2020-01-01T00:00:01.123456789999Z"),
            Some((1_577_836_801, 123_456_789))
        );
        assert_eq!(p("2020-1-1T0:0:1z"), Some((1_577_836_801, 0)));
        assert_eq!(p("2020-02-31T00:00:00"), p("2020-03-02T00:00:00"));
        assert_eq!(p("1.1.2018 16:52:54"), None);
        assert_eq!(p("2018-06-27 16:52:54"), None);
        assert_eq!(p("2018-06-27T16:52:54."), None);
        assert_eq!(p("1969-12-31T23:59:59"), None);
        assert_eq!(p("2018-13-01T00:00:00"), None);
    }

    #[test]
    fn civil_conversions_agree() {
        for day in -800_000..800_000 {
            let (y, m, d) = civil_from_days(day);
            assert_eq!(days_from_civil(y, m, d), day);
        }
    }
}
