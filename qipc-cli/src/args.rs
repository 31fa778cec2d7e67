//! Hand-written argument parsing: options with values, flags, positionals
//! and a `--` tail.

use std::{collections::HashMap, time::Duration};

use crate::CliError;

/// The parsed command line of one subcommand.
#[derive(Debug, Default)]
pub struct Args {
    pub cmd: String,
    pub positionals: Vec<String>,
    values: HashMap<String, String>,
    flags: Vec<String>,
    /// What follows `--`.
    pub rest: Vec<String>,
}

impl Args {
    /// Parses `argv` (after the subcommand) with the options this command
    /// accepts: `with_value` take a value (`--x V` or `--x=V`), `flags` do not.
    pub fn parse(cmd: &str, argv: &[String], with_value: &[&str], flags: &[&str]) -> Result<Args, CliError> {
        let mut a = Args { cmd: cmd.to_string(), ..Args::default() };
        let mut i = 0;
        while i < argv.len() {
            let arg = &argv[i];
            i += 1;
            if arg == "--" {
                a.rest = argv[i..].to_vec();
                break;
            }
            if arg.starts_with("--") && arg.len() > 2 {
                let (name, inline) = match arg.split_once('=') {
                    Some((n, v)) => (n.to_string(), Some(v.to_string())),
                    None => (arg.clone(), None),
                };
                if with_value.contains(&name.as_str()) {
                    let value = match inline {
                        Some(v) => v,
                        None => {
                            let v = argv.get(i).ok_or_else(|| a.usage(format!("{name} needs a value")))?;
                            i += 1;
                            v.clone()
                        }
                    };
                    if a.values.insert(name.clone(), value).is_some() {
                        return Err(a.usage(format!("{name} given twice")));
                    }
                } else if flags.contains(&name.as_str()) {
                    if inline.is_some() {
                        return Err(a.usage(format!("{name} takes no value")));
                    }
                    a.flags.push(name);
                } else {
                    return Err(a.usage(format!("unknown option {name}")));
                }
            } else if arg.starts_with('-') && arg.len() > 1 && arg.parse::<f64>().is_err() {
                return Err(a.usage(format!("unknown option {arg}")));
            } else {
                a.positionals.push(arg.clone());
            }
        }
        Ok(a)
    }

    pub fn usage(&self, msg: impl Into<String>) -> CliError {
        CliError::Usage { cmd: self.cmd.clone(), msg: msg.into() }
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    pub fn flag(&self, name: &str) -> bool {
        self.flags.iter().any(|f| f == name)
    }

    /// At most `max` positionals.
    pub fn max_positionals(&self, max: usize) -> Result<(), CliError> {
        if self.positionals.len() > max {
            return Err(self.usage(format!("unexpected argument `{}`", self.positionals[max])));
        }
        Ok(())
    }

    pub fn number(&self, name: &str) -> Result<Option<usize>, CliError> {
        self.value(name)
            .map(|v| parse_size(v).ok_or_else(|| self.usage(format!("{name}: not a size: `{v}`"))))
            .transpose()
    }

    pub fn duration(&self, name: &str) -> Result<Option<Duration>, CliError> {
        self.value(name)
            .map(|v| {
                parse_duration(v)
                    .ok_or_else(|| self.usage(format!("{name}: not a duration: `{v}` (examples: 500ms, 10s, 2m)")))
            })
            .transpose()
    }

    /// Exactly one of the given value options (or none if `optional`).
    pub fn one_of<'a>(&'a self, names: &[&'a str], optional: bool) -> Result<Option<(&'a str, &'a str)>, CliError> {
        let given: Vec<(&str, &str)> = names.iter().filter_map(|n| self.value(n).map(|v| (*n, v))).collect();
        let stdin = names.contains(&"--stdin") && self.flag("--stdin");
        match (given.len() + usize::from(stdin), optional) {
            (0, true) => Ok(None),
            (0, false) => Err(self.usage(format!("one of {} is required", names.join(", ")))),
            (1, _) if stdin => Ok(Some(("--stdin", ""))),
            (1, _) => Ok(Some(given[0])),
            _ => Err(self.usage(format!("only one of {} may be given", names.join(", ")))),
        }
    }
}

/// `1024`, `4k`, `4K`, `4KiB`, `1M`, `0x400`.
pub fn parse_size(s: &str) -> Option<usize> {
    if let Some(hex) = s.strip_prefix("0x") {
        return usize::from_str_radix(hex, 16).ok();
    }
    let digits = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(digits);
    let n: usize = n.parse().ok()?;
    let mult = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(mult)
}

/// `500ms`, `10s`, `2m`, `1h`, `1.5s`; a bare number is seconds.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: f64 = n.parse().ok()?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_durations() {
        assert_eq!(parse_size("1024"), Some(1024));
        assert_eq!(parse_size("4k"), Some(4096));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        assert_eq!(parse_size("x"), None);
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("10s"), Some(Duration::from_secs(10)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("2x"), None);
    }
}
