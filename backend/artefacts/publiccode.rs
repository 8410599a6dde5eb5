//! A code artefact's `publiccode.yml`: the metadata file of the publiccode.yml standard
//! (<https://yml.publiccode.tools>) that public bodies put at the root of software they
//! publish. A member pastes it on the artefact form (Kettle never fetches it from a URL);
//! [`parse`] checks the fields Kettle shows and exports — `publiccodeYmlVersion`, `name`,
//! `url`, `legal.license` (an SPDX expression), `maintenance.type`, `developmentStatus`
//! and `description.<lang>.shortDescription`/`longDescription` — and the original text is
//! stored beside them. Other keys of the standard are kept in the text but not checked.
//!
//! YAML is parsed by `yaml-rust2` (pure safe Rust). Its loader copies the node an alias
//! names, so a few lines of nested aliases ("billion laughs") would expand to gigabytes:
//! before loading, one pass over the parser's events works out how many nodes the
//! document expands to, and how deep it nests, and refuses it past [`NODES_MAX`] or
//! [`DEPTH_MAX`]. The text itself is at most [`SOURCE_MAX_BYTES`].

use std::collections::HashMap;

use sqlx::{any::AnyRow, Row};
use yaml_rust2::{
    parser::{Event, MarkedEventReceiver, Parser},
    scanner::Marker,
    Yaml, YamlLoader,
};

use crate::{
    db::{self, Db, Tx},
    error::{AppResult, UserError, UserErrorCode},
};

/// The GraphQL input field every problem is reported against.
pub const FIELD: &str = "publiccode";
/// The largest publiccode.yml accepted (the standard's own examples are a few KiB).
pub const SOURCE_MAX_BYTES: usize = 64 * 1024;
/// How many nodes a document may have once its aliases are expanded.
pub const NODES_MAX: u64 = 20_000;
/// How deeply collections may nest (the standard needs four levels).
pub const DEPTH_MAX: usize = 32;
/// The standard's limit on `shortDescription`.
pub const SHORT_DESCRIPTION_MAX: usize = 150;
/// The standard's limit on `longDescription`.
pub const LONG_DESCRIPTION_MAX: usize = 10_000;
/// Limits on the other one-line fields.
const NAME_MAX: usize = 150;
const LICENCE_MAX: usize = 200;

crate::text_enum! {
    /// `maintenance.type`: who looks after the software.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum MaintenanceType {
        /// The publishing body maintains it itself.
        Internal => "internal",
        /// A contractor maintains it under contract.
        Contract => "contract",
        /// A community of users maintains it.
        Community => "community",
        /// Nobody maintains it.
        None => "none",
    }
}

crate::text_enum! {
    /// `developmentStatus`: how far along the software is.
    #[derive(Clone, Copy, Debug, PartialEq, Eq, async_graphql::Enum)]
    pub enum DevelopmentStatus {
        Concept => "concept",
        Development => "development",
        Beta => "beta",
        Stable => "stable",
        Obsolete => "obsolete",
    }
}

/// A checked publiccode.yml: its text and the fields Kettle uses.
#[derive(Clone, Debug, PartialEq)]
pub struct Publiccode {
    pub artefact_id: i64,
    pub source: String,
    /// `publiccodeYmlVersion`, such as `0.4`.
    pub yml_version: String,
    pub name: String,
    /// The software's repository or home page, as parsed (http or https).
    pub url: String,
    /// `legal.license`: an SPDX licence expression, such as `EUPL-1.2 OR MIT`.
    pub licence: String,
    pub maintenance_type: MaintenanceType,
    pub development_status: DevelopmentStatus,
    /// The language of the description kept: English when the file has one, else the
    /// first in the file.
    pub description_language: String,
    pub short_description: String,
    /// Empty when the file has none.
    pub long_description: String,
}

/// Checks `source` as a publiccode.yml: every problem at once, each a user error on
/// [`FIELD`] whose message names the key at fault. `artefact_id` is 0 until it is stored.
pub fn parse(source: &str) -> Result<Publiccode, Vec<UserError>> {
    let invalid = |message: String| vec![UserError::new(FIELD, UserErrorCode::Invalid, message)];
    if source.len() > SOURCE_MAX_BYTES {
        return Err(vec![UserError::new(
            FIELD,
            UserErrorCode::TooLong,
            format!("The publiccode.yml must be {} KiB or smaller.", SOURCE_MAX_BYTES / 1024),
        )]);
    }
    if let Some(problem) = crate::text::check(FIELD, "The publiccode.yml", source) {
        return Err(vec![problem]);
    }
    let document = load(source).map_err(invalid)?;
    let mut problems = Vec::new();
    let mut problem = |code: UserErrorCode, message: String| problems.push(UserError::new(FIELD, code, message));

    let yml_version = match scalar(&document["publiccodeYmlVersion"]) {
        Some(version) if is_version(&version) => version,
        Some(_) => {
            problem(
                UserErrorCode::Invalid,
                "publiccode.yml: publiccodeYmlVersion must be a version such as \"0.4\".".into(),
            );
            String::new()
        }
        None => {
            problem(UserErrorCode::Blank, "publiccode.yml: publiccodeYmlVersion is missing.".into());
            String::new()
        }
    };
    let mut line = |key: &str, max: usize| -> String {
        let path: Vec<&str> = key.split('.').collect();
        let node = path.iter().fold(&document, |node, part| &node[*part]);
        match scalar(node).map(|v| v.trim().to_string()) {
            None => {
                problem(UserErrorCode::Blank, format!("publiccode.yml: {key} is missing."));
                String::new()
            }
            Some(value) if value.is_empty() => {
                problem(UserErrorCode::Blank, format!("publiccode.yml: {key} is empty."));
                String::new()
            }
            Some(value) if value.chars().count() > max || value.contains(['\n', '\r']) => {
                problem(
                    UserErrorCode::Invalid,
                    format!("publiccode.yml: {key} must be one line of at most {max} characters."),
                );
                String::new()
            }
            Some(value) => value,
        }
    };
    let name = line("name", NAME_MAX);
    let raw_url = line("url", crate::organisations::URL_MAX);
    let raw_licence = line("legal.license", LICENCE_MAX);
    let raw_maintenance = line("maintenance.type", 20);
    let raw_status = line("developmentStatus", 20);

    let mut url = String::new();
    if !raw_url.is_empty() {
        match crate::organisations::web_address(FIELD, "publiccode.yml: url", &raw_url, true) {
            Ok(parsed) => url = parsed.unwrap_or_default(),
            Err(_) => problem(
                UserErrorCode::Invalid,
                "publiccode.yml: url must be a web address starting with https:// or http://.".into(),
            ),
        }
    }
    let mut licence = String::new();
    if !raw_licence.is_empty() {
        match spdx::Expression::parse(&raw_licence) {
            Ok(_) => licence = raw_licence,
            Err(_) => problem(
                UserErrorCode::Invalid,
                "publiccode.yml: legal.license must be an SPDX licence expression, such as EUPL-1.2 or \
                 MIT OR Apache-2.0."
                    .into(),
            ),
        }
    }
    let maintenance_type = MaintenanceType::parse(&raw_maintenance).ok();
    if maintenance_type.is_none() && !raw_maintenance.is_empty() {
        problem(
            UserErrorCode::Invalid,
            "publiccode.yml: maintenance.type must be one of internal, contract, community or none.".into(),
        );
    }
    let development_status = DevelopmentStatus::parse(&raw_status).ok();
    if development_status.is_none() && !raw_status.is_empty() {
        problem(
            UserErrorCode::Invalid,
            "publiccode.yml: developmentStatus must be one of concept, development, beta, stable or obsolete.".into(),
        );
    }

    let (description_language, short_description, long_description) = match description(&document) {
        Ok(found) => found,
        Err((code, message)) => {
            problem(code, message);
            Default::default()
        }
    };

    match (maintenance_type, development_status) {
        (Some(maintenance_type), Some(development_status)) if problems.is_empty() => Ok(Publiccode {
            artefact_id: 0,
            source: source.to_string(),
            yml_version,
            name,
            url,
            licence,
            maintenance_type,
            development_status,
            description_language,
            short_description,
            long_description,
        }),
        _ => Err(problems),
    }
}

/// The description Kettle keeps: English (`en`, then `en-…`) when there is one, else the
/// first language in the file.
fn description(document: &Yaml) -> Result<(String, String, String), (UserErrorCode, String)> {
    let Some(languages) = document["description"].as_hash() else {
        return Err((UserErrorCode::Blank, "publiccode.yml: description is missing.".into()));
    };
    let keys: Vec<String> = languages.keys().filter_map(scalar).collect();
    let chosen = keys
        .iter()
        .find(|k| k.as_str() == "en")
        .or_else(|| keys.iter().find(|k| k.starts_with("en-")))
        .or_else(|| keys.first())
        .cloned();
    let Some(language) = chosen else {
        return Err((UserErrorCode::Blank, "publiccode.yml: description has no language.".into()));
    };
    if language.is_empty() || language.len() > 35 || !language.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
        return Err((
            UserErrorCode::Invalid,
            "publiccode.yml: description's languages must be codes such as en.".into(),
        ));
    }
    let entry = &document["description"][language.as_str()];
    let short = scalar(&entry["shortDescription"]).map(|s| s.trim().to_string()).unwrap_or_default();
    let long = scalar(&entry["longDescription"]).map(|s| s.trim().to_string()).unwrap_or_default();
    if short.is_empty() {
        return Err((
            UserErrorCode::Blank,
            format!("publiccode.yml: description.{language}.shortDescription is missing."),
        ));
    }
    if short.chars().count() > SHORT_DESCRIPTION_MAX || short.contains(['\n', '\r']) {
        return Err((
            UserErrorCode::TooLong,
            format!(
                "publiccode.yml: description.{language}.shortDescription must be one line of at most \
                 {SHORT_DESCRIPTION_MAX} characters."
            ),
        ));
    }
    if long.chars().count() > LONG_DESCRIPTION_MAX {
        return Err((
            UserErrorCode::TooLong,
            format!(
                "publiccode.yml: description.{language}.longDescription must be at most {LONG_DESCRIPTION_MAX} \
                 characters."
            ),
        ));
    }
    Ok((language, short, long))
}

/// `0.4`, `0.3.0`: digits and dots. YAML reads an unquoted `0.4` as a number, which
/// [`scalar`] gives back as written.
fn is_version(text: &str) -> bool {
    !text.is_empty()
        && text.len() <= 10
        && text.split('.').count() <= 3
        && text.split('.').all(|part| !part.is_empty() && part.chars().all(|c| c.is_ascii_digit()))
}

/// A scalar node as text (numbers and booleans as written); `None` for anything else.
fn scalar(node: &Yaml) -> Option<String> {
    match node {
        Yaml::String(text) | Yaml::Real(text) => Some(text.clone()),
        Yaml::Integer(number) => Some(number.to_string()),
        Yaml::Boolean(value) => Some(value.to_string()),
        _ => None,
    }
}

/// Loads one YAML document after [`measure`] has shown it is safe to expand; the error
/// is the sentence to show.
fn load(source: &str) -> Result<Yaml, String> {
    let shape = measure(source).map_err(|e| format!("The publiccode.yml is not valid YAML: {e}."))?;
    if shape.nodes > NODES_MAX {
        return Err(format!(
            "The publiccode.yml has too many values (at most {NODES_MAX}, counting what each alias repeats)."
        ));
    }
    if shape.depth > DEPTH_MAX {
        return Err(format!("The publiccode.yml nests too deeply (at most {DEPTH_MAX} levels)."));
    }
    if shape.documents != 1 {
        return Err("The publiccode.yml must hold exactly one YAML document.".into());
    }
    let mut documents =
        YamlLoader::load_from_str(source).map_err(|e| format!("The publiccode.yml is not valid YAML: {e}."))?;
    match documents.pop() {
        Some(document @ Yaml::Hash(_)) => Ok(document),
        _ => Err("The publiccode.yml must be a mapping of keys such as name and url.".into()),
    }
}

/// What one pass over the parser's events learns of a document, without building it.
#[derive(Default)]
struct Shape {
    /// Nodes once every alias is expanded (saturating).
    nodes: u64,
    depth: usize,
    documents: usize,
    /// Expanded size of each anchored node.
    anchors: HashMap<usize, u64>,
    /// Open collections: their anchor id and expanded size so far.
    open: Vec<(usize, u64)>,
}

impl Shape {
    fn add(&mut self, anchor: usize, size: u64) {
        if anchor > 0 {
            self.anchors.insert(anchor, size);
        }
        match self.open.last_mut() {
            Some((_, total)) => *total = total.saturating_add(size),
            None => self.nodes = self.nodes.saturating_add(size),
        }
    }
}

impl MarkedEventReceiver for Shape {
    fn on_event(&mut self, event: Event, _mark: Marker) {
        match event {
            Event::DocumentStart => self.documents += 1,
            Event::Scalar(_, _, anchor, _) => self.add(anchor, 1),
            // An alias to an unknown anchor is a load error anyway; count it as one node.
            Event::Alias(id) => self.add(0, self.anchors.get(&id).copied().unwrap_or(1)),
            Event::SequenceStart(anchor, _) | Event::MappingStart(anchor, _) => {
                self.open.push((anchor, 1));
                self.depth = self.depth.max(self.open.len());
            }
            Event::SequenceEnd | Event::MappingEnd => {
                if let Some((anchor, size)) = self.open.pop() {
                    self.add(anchor, size);
                }
            }
            _ => {}
        }
    }
}

fn measure(source: &str) -> Result<Shape, yaml_rust2::ScanError> {
    let mut shape = Shape::default();
    Parser::new_from_str(source).load(&mut shape, true)?;
    Ok(shape)
}

const COLUMNS: &str = "artefact_id, source, yml_version, name, url, licence, maintenance_type, development_status, \
                       description_language, short_description, long_description";

impl Publiccode {
    fn from_row(row: &AnyRow) -> sqlx::Result<Publiccode> {
        Ok(Publiccode {
            artefact_id: row.try_get("artefact_id")?,
            source: row.try_get("source")?,
            yml_version: row.try_get("yml_version")?,
            name: row.try_get("name")?,
            url: row.try_get("url")?,
            licence: row.try_get("licence")?,
            maintenance_type: row.try_get("maintenance_type")?,
            development_status: row.try_get("development_status")?,
            description_language: row.try_get("description_language")?,
            short_description: row.try_get("short_description")?,
            long_description: row.try_get("long_description")?,
        })
    }
}

/// The publiccode.yml of each artefact that has one.
pub async fn of_artefacts(db: &Db, ids: &[i64]) -> AppResult<HashMap<i64, Publiccode>> {
    let rows =
        db::rows_by_ids(db, &format!("SELECT {COLUMNS} FROM artefact_publiccode WHERE artefact_id IN"), ids).await?;
    Ok(rows.iter().map(|r| Publiccode::from_row(r).map(|p| (p.artefact_id, p))).collect::<sqlx::Result<_>>()?)
}

/// Sets (or, with `None`, removes) an artefact's publiccode.yml, inside the transaction
/// that saves the artefact, so the two are written together or not at all.
pub async fn replace(tx: &mut Tx, artefact_id: i64, publiccode: Option<&Publiccode>) -> AppResult<()> {
    sqlx::query("DELETE FROM artefact_publiccode WHERE artefact_id = $1").bind(artefact_id).execute(&mut **tx).await?;
    let Some(p) = publiccode else { return Ok(()) };
    sqlx::query(&format!("INSERT INTO artefact_publiccode ({COLUMNS}, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"))
        .bind(artefact_id)
        .bind(&p.source)
        .bind(&p.yml_version)
        .bind(&p.name)
        .bind(&p.url)
        .bind(&p.licence)
        .bind(p.maintenance_type.as_str())
        .bind(p.development_status.as_str())
        .bind(&p.description_language)
        .bind(&p.short_description)
        .bind(&p.long_description)
        .bind(db::now_millis())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const VALID: &str = "\
publiccodeYmlVersion: \"0.4\"
name: Bin day finder
url: https://github.com/example-council/bin-day
developmentStatus: stable
softwareType: standalone/web
legal:
  license: EUPL-1.2 OR MIT
maintenance:
  type: internal
  contacts:
    - name: Ada
description:
  it:
    shortDescription: Trova il giorno
  en:
    shortDescription: Tells residents which day their bins are collected
    longDescription: >
      A small web service that looks up an address and says which bins go out when.
";

    fn messages(source: &str) -> Vec<String> {
        parse(source).expect_err("should be refused").into_iter().map(|e| e.message).collect()
    }

    #[test]
    fn a_valid_file_is_parsed() {
        let p = parse(VALID).unwrap();
        assert_eq!(p.yml_version, "0.4");
        assert_eq!(p.name, "Bin day finder");
        assert_eq!(p.url, "https://github.com/example-council/bin-day");
        assert_eq!(p.licence, "EUPL-1.2 OR MIT");
        assert_eq!(p.maintenance_type, MaintenanceType::Internal);
        assert_eq!(p.development_status, DevelopmentStatus::Stable);
        assert_eq!(p.description_language, "en");
        assert_eq!(p.short_description, "Tells residents which day their bins are collected");
        assert!(p.long_description.starts_with("A small web service"));
        assert_eq!(p.source, VALID);
        // An unquoted version is a YAML number; it is kept as written.
        assert_eq!(parse(&VALID.replace("\"0.4\"", "0.4")).unwrap().yml_version, "0.4");
    }

    #[test]
    fn invalid_yaml_is_refused() {
        let found = messages("name: [unclosed\nurl: x");
        assert!(found[0].contains("not valid YAML"), "{found:?}");
        assert!(messages("- just\n- a list\n")[0].contains("mapping"));
        assert!(messages("name: a\n---\nname: b\n")[0].contains("one YAML document"));
    }

    #[test]
    fn each_bad_field_is_named() {
        let found = messages(&VALID.replace("type: internal", "type: volunteers"));
        assert_eq!(
            found,
            vec!["publiccode.yml: maintenance.type must be one of internal, contract, community or none."]
        );
        let found = messages(&VALID.replace("  license: EUPL-1.2 OR MIT\n", ""));
        assert!(found.iter().any(|m| m.contains("legal.license is missing")), "{found:?}");
        let found = messages(&VALID.replace("EUPL-1.2 OR MIT", "Not A Licence"));
        assert!(found.iter().any(|m| m.contains("legal.license must be an SPDX")), "{found:?}");
        let found = messages(&VALID.replace("developmentStatus: stable", "developmentStatus: done"));
        assert!(found.iter().any(|m| m.contains("developmentStatus must be one of")), "{found:?}");
        let found = messages(&VALID.replace("https://github.com", "ftp://github.com"));
        assert!(found.iter().any(|m| m.contains("url must be a web address")), "{found:?}");
        let found =
            messages(&VALID.replace("publiccodeYmlVersion: \"0.4\"\n", "").replace("name: Bin day finder\n", ""));
        assert!(found.iter().any(|m| m.contains("publiccodeYmlVersion is missing")), "{found:?}");
        assert!(found.iter().any(|m| m.contains("name is missing")), "{found:?}");
        let long_short = format!("shortDescription: {}", "x".repeat(151));
        let found = messages(
            &VALID.replace("shortDescription: Tells residents which day their bins are collected", &long_short),
        );
        assert!(found.iter().any(|m| m.contains("description.en.shortDescription must be one line")), "{found:?}");
    }

    #[test]
    fn a_file_without_english_keeps_its_first_language() {
        let source = VALID.replace("  en:\n", "  fr:\n");
        let p = parse(&source).unwrap();
        assert_eq!(p.description_language, "it");
        assert_eq!(p.short_description, "Trova il giorno");
    }

    #[test]
    fn oversized_files_are_refused() {
        let big = format!("{VALID}# {}\n", "x".repeat(SOURCE_MAX_BYTES));
        let refused = parse(&big).unwrap_err();
        assert_eq!(refused[0].code, UserErrorCode::TooLong);
        assert!(refused[0].message.contains("64 KiB"));
    }

    #[test]
    fn alias_bombs_are_refused_before_they_expand() {
        // Nine levels of nine aliases each: 9^9 (387 million) strings once expanded.
        let mut bomb =
            String::from("a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n");
        for (level, previous) in
            ["b", "c", "d", "e", "f", "g", "h", "i"].iter().zip(["a", "b", "c", "d", "e", "f", "g", "h"])
        {
            let aliases = vec![format!("*{previous}"); 9].join(",");
            bomb.push_str(&format!("{level}: &{level} [{aliases}]\n"));
        }
        let found = messages(&bomb);
        assert!(found[0].contains("too many values"), "{found:?}");
        // A few aliases that expand to little are fine.
        let shape = measure("x: &x [1, 2]\ny: *x\nz: *x\n").unwrap();
        // The mapping, three keys, the list of two and two copies of it.
        assert_eq!(shape.nodes, 1 + 3 + 3 * 3);
    }

    #[test]
    fn deep_nesting_is_refused() {
        let deep = format!("a: {}{}", "[".repeat(100), "]".repeat(100));
        assert!(messages(&deep)[0].contains("nests too deeply"));
    }

    #[test]
    fn refused_characters_are_refused() {
        let found = parse(&VALID.replace("Bin day", "Bin\u{0}day")).unwrap_err();
        assert_eq!(found[0].field.as_deref(), Some(FIELD));
    }
}
