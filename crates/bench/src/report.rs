//! The figures of a run: one table on stdout and the same figures as JSON.

use std::io::Write;
use std::path::Path;

use serde::Serialize;

/// A goal a figure is judged against, from the benchmark issue.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
pub(crate) enum Target {
    AtLeast(f64),
    Below(f64),
    /// At least the reference figure of the run times this factor.
    AtLeastReference(f64),
}

/// One measured figure.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Figure {
    pub(crate) scenario: String,
    pub(crate) metric: String,
    pub(crate) value: f64,
    pub(crate) unit: String,
    /// The name of the reference rate this figure is compared with.
    pub(crate) against: Option<String>,
    /// `value` divided by that reference, and its name.
    pub(crate) ratio: Option<(f64, String)>,
    pub(crate) target: Option<Target>,
    pub(crate) met: Option<bool>,
}

/// Everything measured in one run.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Report {
    pub(crate) machine: Vec<(String, String)>,
    pub(crate) figures: Vec<Figure>,
    /// Reference rates by name (`pg_commits_per_s`, `axum_c8_rps`, ...).
    pub(crate) references: Vec<(String, f64)>,
    pub(crate) notes: Vec<String>,
}

impl Figure {
    pub(crate) fn against(&mut self, reference: &str) -> &mut Self {
        self.against = Some(reference.to_owned());
        self
    }

    pub(crate) fn target(&mut self, target: Target) -> &mut Self {
        self.target = Some(target);
        self
    }

    pub(crate) fn target_if(&mut self, target: Option<Target>) -> &mut Self {
        self.target = target;
        self
    }
}

impl Report {
    pub(crate) fn note(&mut self, text: impl Into<String>) {
        let text = text.into();
        eprintln!("note: {text}");
        self.notes.push(text);
    }

    /// Adds a figure; say what it is compared with through the returned [`Figure`].
    pub(crate) fn add(
        &mut self,
        scenario: &str,
        metric: &str,
        value: f64,
        unit: &str,
    ) -> &mut Figure {
        eprintln!("  {scenario}: {metric} = {} {unit}", fmt(value));
        self.figures.push(Figure {
            scenario: scenario.to_owned(),
            metric: metric.to_owned(),
            value,
            unit: unit.to_owned(),
            against: None,
            ratio: None,
            target: None,
            met: None,
        });
        self.figures.last_mut().expect("just pushed")
    }

    /// Computes every figure's ratio to its reference and whether it met its target.
    pub(crate) fn settle(&mut self) {
        let references = self.references.clone();
        for f in &mut self.figures {
            let reference = f.against.as_ref().and_then(|name| {
                references.iter().find(|(n, _)| n == name).map(|(n, v)| (*v, n.clone()))
            });
            f.ratio = reference.as_ref().map(|(r, name)| (f.value / r, name.clone()));
            f.met = f.target.map(|t| match t {
                Target::AtLeast(goal) => f.value >= goal,
                Target::Below(goal) => f.value < goal,
                Target::AtLeastReference(x) => {
                    reference.as_ref().is_some_and(|(r, _)| f.value >= r * x)
                }
            });
        }
    }

    /// The table as Markdown.
    pub(crate) fn table(&self) -> String {
        let mut out = String::from("| scenario | figure | value | unit | ratio | target | met |\n");
        out.push_str("|---|---|---|---|---|---|---|\n");
        for (name, value) in &self.references {
            out.push_str(&format!("| reference | {name} | {} | /s | | | |\n", fmt(*value)));
        }
        for f in &self.figures {
            let ratio = f.ratio.as_ref().map_or(String::new(), |(r, n)| {
                if *r < 0.1 {
                    format!("{r:.4}× {n}")
                } else {
                    format!("{r:.2}× {n}")
                }
            });
            let target = match f.target {
                None => String::new(),
                Some(Target::AtLeast(g)) => format!("≥ {}", fmt(g)),
                Some(Target::Below(g)) => format!("< {}", fmt(g)),
                Some(Target::AtLeastReference(x)) => {
                    format!("≥ {x}× {}", f.ratio.as_ref().map_or("reference", |(_, n)| n))
                }
            };
            let met = match f.met {
                None => "",
                Some(true) => "yes",
                Some(false) => "**MISSED**",
            };
            out.push_str(&format!(
                "| {} | {} | {} | {} | {ratio} | {target} | {met} |\n",
                f.scenario,
                f.metric,
                fmt(f.value),
                f.unit
            ));
        }
        out
    }

    pub(crate) fn write_json(&self, path: &Path) -> anyhow::Result<()> {
        let mut file = std::fs::File::create(path)?;
        serde_json::to_writer_pretty(&mut file, self)?;
        writeln!(file)?;
        Ok(())
    }
}

/// A number with a precision that suits its size.
pub(crate) fn fmt(v: f64) -> String {
    let a = v.abs();
    if a >= 100.0 {
        let n = v.round() as i64;
        let s = n.abs().to_string();
        let mut grouped = String::new();
        for (i, c) in s.chars().enumerate() {
            if i > 0 && (s.len() - i).is_multiple_of(3) {
                grouped.push(',');
            }
            grouped.push(c);
        }
        if n < 0 {
            grouped.insert(0, '-');
        }
        grouped
    } else if a >= 10.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.2}")
    }
}
