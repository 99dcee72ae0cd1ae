//! Which fields are printed, in which order: all of the record's (in
//! UniRec order), or the ones `-o` names (in the order given).

use unirec::{FieldType, Template};

/// `-o FIELDS`: `NAME` or `type NAME` items separated by commas (C's
/// logger took a UniRec spec, `uint32 FOO,time BAR`; the types are optional
/// here, as the input's types are what gets printed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Selection {
    items: Vec<(Option<FieldType>, String)>,
}

impl Selection {
    pub fn parse(spec: &str) -> Result<Selection, String> {
        let mut items: Vec<(Option<FieldType>, String)> = Vec::new();
        for item in spec.split(',') {
            let words: Vec<&str> = item.split_whitespace().collect();
            let (ty, name) = match words[..] {
                [] => continue,
                [name] => (None, name),
                [ty, name] => {
                    let t = FieldType::from_name(ty)
                        .ok_or_else(|| format!("-o: unknown UniRec type `{ty}` of {name}"))?;
                    (Some(t), name)
                }
                _ => return Err(format!("-o: `{}` is not NAME or `type NAME`", item.trim())),
            };
            let valid = name.starts_with(|c: char| c.is_ascii_alphabetic())
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(format!("-o: `{name}` is not a UniRec field name"));
            }
            if items.iter().any(|(_, n)| n == name) {
                return Err(format!("-o: {name} is named twice"));
            }
            items.push((ty, name.to_string()));
        }
        if items.is_empty() {
            return Err("-o: no fields given".into());
        }
        Ok(Selection { items })
    }
}

/// The printed columns for one template: a name and the field's index
/// (`None`: the template lacks it; printed empty, or `null` in JSON).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Columns {
    cols: Vec<(Box<str>, Option<usize>)>,
    header: Vec<String>,
}

impl Columns {
    /// Every field of `t`, in record order.
    pub fn all(t: &Template) -> Columns {
        Columns {
            cols: t
                .fields()
                .iter()
                .enumerate()
                .map(|(i, f)| (f.name().into(), Some(i)))
                .collect(),
            header: t
                .fields()
                .iter()
                .map(|f| format!("{} {}", f.ty(), f.name()))
                .collect(),
        }
    }

    /// The fields of `sel` in `t`. A field `t` lacks, or has with another
    /// type than `sel` says, gets a warning.
    pub fn select(t: &Template, sel: &Selection, warnings: &mut Vec<String>) -> Columns {
        let mut cols = Vec::new();
        let mut header = Vec::new();
        for (ty, name) in &sel.items {
            let idx = t.find(name);
            let field = idx.and_then(|i| t.field(i));
            match (field, ty) {
                (None, _) => warnings.push(format!(
                    "-o: the input has no field {name}: its column stays empty"
                )),
                (Some(f), Some(ty)) if f.ty() != *ty => warnings.push(format!(
                    "-o: {name} is {} in the input, not {ty}: printing the input's value",
                    f.ty()
                )),
                _ => {}
            }
            header.push(match (field, ty) {
                (Some(f), _) => format!("{} {name}", f.ty()),
                (None, Some(ty)) => format!("{ty} {name}"),
                (None, None) => name.clone(),
            });
            cols.push((name.as_str().into(), idx));
        }
        Columns { cols, header }
    }

    /// (name, field index) of each column.
    pub fn iter(&self) -> impl Iterator<Item = (&str, Option<usize>)> {
        self.cols.iter().map(|(n, i)| (&**n, *i))
    }

    /// logger's `-t` line: `type NAME` of each column joined by `delimiter`.
    pub fn header(&self, delimiter: u8) -> String {
        self.header.join(&char::from(delimiter).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn selections() {
        let t = Template::parse("ipaddr SRC_IP,uint16 DST_PORT,uint32 PACKETS").unwrap();
        let sel = Selection::parse("PACKETS, uint16 DST_PORT,NOPE,uint8 SRC_IP").unwrap();
        let mut w = Vec::new();
        let c = Columns::select(&t, &sel, &mut w);
        let got: Vec<_> = c.iter().collect();
        assert_eq!(
            got,
            [
                ("PACKETS", Some(1)),
                ("DST_PORT", Some(2)),
                ("NOPE", None),
                ("SRC_IP", Some(0))
            ]
        );
        assert_eq!(
            c.header(b','),
            "uint32 PACKETS,uint16 DST_PORT,NOPE,ipaddr SRC_IP"
        );
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(Selection::parse("A,A").is_err());
        assert!(Selection::parse("uint99 A").is_err());
        assert!(Selection::parse(" , ").is_err());
        assert!(Selection::parse("1A").is_err());
        assert!(Selection::parse("a b c").is_err());
    }
}
