//! anonymizer — prefix-preserving IP address anonymisation (Crypto-PAn).

use anonymizer::{
    key_from_file_text, parse_key, transform_record, CryptoPan, Plan, Prf, Scratch, DEFAULT_KEY,
};
use anyhow::{anyhow, Context, Result};
use clap::Parser;
use libtrap::module::{self, TrapArgs};
use libtrap::{DataFormat, Trap, TrapError};
use std::process::ExitCode;
use unirec::template::Template;

/// Anonymises IP addresses with Crypto-PAn, keeping prefixes: two addresses
/// sharing their first k bits still do afterwards. Handles SRC_IP and DST_IP
/// and, in the string fields SIP_CALLED_PARTY, SIP_CALLING_PARTY,
/// SIP_CALL_ID, SIP_REQUEST_URI and SIP_VIA, the first address written in
/// the text. With -d it reverses the transformation (the same key is
/// needed). Records keep their template.
#[derive(Parser, Debug)]
#[command(
    name = "anonymizer",
    version,
    after_help = "Interfaces: 1 input (any UniRec template), 1 output (the same template).\n\
Key: 32 characters, or 0x and 64 hex digits (the first 16 bytes are the AES key, the rest the pad).\n\
Example: anonymizer -f /etc/nemea/anonymizer.key -i u:flows,u:anonymized"
)]
struct Args {
    #[command(flatten)]
    trap: TrapArgs,
    /// The secret key (visible to other users in the process list: prefer -f).
    #[arg(short = 'k', long = "key", value_name = "KEY", conflicts_with = "file")]
    key: Option<String>,
    /// Read the key from the first line of FILE.
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    file: Option<String>,
    /// Use NEMEA's fast MurmurHash3-like function instead of AES (not Crypto-PAn: other tools give other results).
    #[arg(short = 'M', long = "murmur")]
    murmur: bool,
    /// Leave SRC_IP alone.
    #[arg(short = 'S', long = "srcip")]
    no_src: bool,
    /// Leave DST_IP alone.
    #[arg(short = 'D', long = "dstip")]
    no_dst: bool,
    /// De-anonymise: reverse the transformation.
    #[arg(short = 'd', long = "de-anonym")]
    reverse: bool,
    /// Do not pass end of stream on.
    #[arg(short = 'n', long = "no-eos")]
    no_eos: bool,
}

fn key(args: &Args) -> Result<[u8; 32]> {
    if let Some(f) = &args.file {
        let text =
            std::fs::read_to_string(f).with_context(|| format!("cannot read the key file {f}"))?;
        return key_from_file_text(&text).with_context(|| format!("key file {f}"));
    }
    match &args.key {
        Some(k) => parse_key(k).context("-k"),
        None => {
            libtrap::log::warn("no -k or -f: using NEMEA's built-in key, which anyone can reverse");
            Ok(parse_key(DEFAULT_KEY)?)
        }
    }
}

fn run(args: &Args) -> Result<()> {
    let pan = CryptoPan::new(
        &key(args)?,
        if args.murmur { Prf::Murmur } else { Prf::Aes },
    );
    let mut trap = Trap::init(&args.trap.ifc, Some(1), Some(1))?;
    let (inputs, outputs) = trap.split_mut();
    let (input, output) = (&mut inputs[0], &mut outputs[0]);
    let name = input.name().to_string();
    let mut tmpl: Option<(Template, Plan)> = None;
    let mut scratch = Scratch::default();
    let mut out = Vec::with_capacity(1 << 12);
    let mut count = 0u64;
    let result: Result<()> = loop {
        let msg = match input.recv() {
            Ok(m) => m,
            Err(TrapError::Timeout) => continue,
            Err(TrapError::Terminated) => break Ok(()),
            Err(e) => break Err(e.into()),
        };
        if msg.is_eos() {
            if args.no_eos && !input.ended() {
                continue;
            }
            break Ok(());
        }
        if msg.format_changed || tmpl.is_none() {
            let Some(DataFormat::UniRec(spec)) = msg.format else {
                break Err(anyhow!("{name}: the sender's data are not UniRec"));
            };
            let t = match Template::parse(spec) {
                Ok(t) => t,
                Err(e) => break Err(anyhow!("{name}: bad template from the sender: {e}")),
            };
            let plan = Plan::new(&t, args.no_src, args.no_dst);
            if plan.is_empty() {
                libtrap::log::warn(&format!(
                    "{name}: no field to anonymise in the template `{spec}`"
                ));
            }
            if let Err(e) = output.set_format(DataFormat::UniRec(spec.clone())) {
                break Err(e.into());
            }
            tmpl = Some((t, plan));
        }
        let Some((t, plan)) = &tmpl else { continue };
        if let Err(e) = transform_record(
            &pan,
            t,
            plan,
            msg.data,
            args.reverse,
            &mut scratch,
            &mut out,
        ) {
            break Err(anyhow!("{name}: bad record: {e}"));
        }
        match output.send(&out) {
            Ok(()) | Err(TrapError::Timeout) => count += 1,
            Err(TrapError::Terminated) => break Ok(()),
            Err(e) => break Err(e.into()),
        }
    };
    let eos = !args.no_eos && output.format().is_some();
    let ended = trap.end(eos);
    result?;
    ended?;
    libtrap::log::info(0, &format!("{count} records"));
    Ok(())
}

fn main() -> ExitCode {
    let args: Args = module::parse_args("anonymizer");
    module::start("anonymizer", &args.trap);
    module::exit_status(run(&args).map_err(|e| format!("{e:#}")))
}
