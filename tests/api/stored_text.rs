//! Enums stored as text (`crate::text_enum!`): a stored name the code does not know fails
//! loudly instead of reading as some default.

use serde_json::json;

use crate::{
    artefacts::{artefact, number, share},
    case_studies::{admin, create_topic},
    scenarios,
    support::{error_code, Backend, Scenario, TestApp},
};

pub fn scenarios() -> Vec<(&'static str, Scenario)> {
    scenarios![an_unknown_stored_name_is_an_internal_error_not_a_default]
}

async fn an_unknown_stored_name_is_an_internal_error_not_a_default(app: TestApp) {
    let sharer = admin(&app, "sharer@example.org", "Sharer").await;
    let topic = create_topic(&sharer, "Waste").await;
    let shared = share(&sharer, artefact("Bin reminders", &[&topic])).await;
    let id = number("Artefact", &shared["id"]);
    const KIND: &str = "query($id: ID!) { node(id: $id) { ... on Artefact { title kind } } }";
    let before = app.anonymous().data(KIND, json!({ "id": shared["id"] })).await;
    assert_eq!(before["node"]["kind"], "CODE", "{before}");

    // Write a name no variant has, past the CHECK constraint that normally forbids it
    // (as a newer build, or a hand edit, might).
    let update = format!("UPDATE artefacts SET kind = 'spreadsheet' WHERE id = {id}");
    match app.backend() {
        Backend::Sqlite => {
            app.execute_sql(&format!(
                "PRAGMA ignore_check_constraints = ON; {update}; PRAGMA ignore_check_constraints = OFF"
            ))
            .await
        }
        Backend::Postgres { .. } => {
            app.execute_sql("ALTER TABLE artefacts DROP CONSTRAINT artefacts_kind_check").await;
            app.execute_sql(&update).await;
        }
    }

    // Before `text_enum!`, this read as `OTHER`.
    let body = app.anonymous().gql(KIND, json!({ "id": shared["id"] })).await;
    assert_eq!(error_code(&body), "INTERNAL", "{body}");
    assert!(body["data"]["node"]["kind"].is_null(), "{body}");
}
