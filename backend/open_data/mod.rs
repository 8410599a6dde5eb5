//! Open data: what Kettle publishes for machines as well as people.
//!
//! - [`json_ld`]: schema.org JSON-LD in the head of case study, artefact and meetup pages;
//! - [`export`]: every published case study, artefact and reuse record as JSON Lines at
//!   `/open-data/kettle.jsonl`, streamed page by page (README, "Open data", documents the
//!   format).
//!
//! Licences: an artefact carries its own SPDX licence (and a code artefact's
//! publiccode.yml its own `legal.license`); the text members write on Kettle itself —
//! case studies and reuse notes — is published under [`CONTENT_LICENCE`].

pub mod export;
pub mod json_ld;

/// The licence of the text members publish on Kettle (case studies, reuse notes), as an
/// SPDX id: Creative Commons Attribution 4.0, which the Open Government Licence is
/// compatible with and which lets other public bodies reuse a write-up with credit.
pub const CONTENT_LICENCE: &str = "CC-BY-4.0";

/// The version of the export's record format: it goes up only when a field changes
/// meaning or goes away (new fields may appear without it).
pub const FORMAT_VERSION: u32 = 1;

/// The SPDX page of a licence id, such as `https://spdx.org/licenses/MIT.html`.
pub fn licence_url(id: &str) -> String {
    format!("https://spdx.org/licenses/{id}.html")
}

/// The SPDX licence (and exception-free) ids an expression names, in order, each once:
/// `EUPL-1.2 OR MIT` gives both. Empty when the expression does not parse.
pub fn expression_ids(expression: &str) -> Vec<String> {
    let Ok(parsed) = spdx::Expression::parse(expression) else { return Vec::new() };
    let mut ids: Vec<String> = Vec::new();
    for requirement in parsed.requirements() {
        if let spdx::LicenseItem::Spdx { id, .. } = &requirement.req.license {
            if !ids.iter().any(|known| known == id.name) {
                ids.push(id.name.to_string());
            }
        }
    }
    ids
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expressions_name_their_licences() {
        assert_eq!(expression_ids("EUPL-1.2 OR MIT"), vec!["EUPL-1.2", "MIT"]);
        assert_eq!(expression_ids("(MIT OR Apache-2.0) AND MIT"), vec!["MIT", "Apache-2.0"]);
        assert!(expression_ids("not a licence").is_empty());
    }
}
