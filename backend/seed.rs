//! `kettle seed --demo`: fills an empty instance with a small, believable community, so a
//! newcomer sees a living site at once. It goes through the same domain functions as the
//! API (validation aside), so the data is what real use would produce.

use std::collections::HashMap;

use anyhow::{bail, Context};
use rand::{distributions::Alphanumeric, Rng};

use crate::{
    accounts::{self, passwords, NewMember, Role},
    artefacts::{self, reuse, ArtefactKind, ArtefactStatus},
    case_studies::{
        self,
        marks::{self, Mark},
        CaseStudyStatus, Fields, Phase,
    },
    comments::{self, Posted, Subject},
    db::Db,
    error::AppError,
    meetups::{
        self,
        recurrence::{Frequency, Rule, SeriesEnd},
    },
    notifications::{
        dispatch,
        follows::{self, FollowLevel},
    },
    organisations::{self, NewOrganisation, OrganisationKind},
    topics, uploads,
};

const TOPICS: &[(&str, &str)] = &[
    ("Bin collection", "Waste, recycling and the services around them."),
    ("Accessibility", "Making services work for everyone, including audits and assistive technology."),
    ("User research", "Finding out what people need, and how to do it well in the public sector."),
    ("Housing", "Repairs, allocations, homelessness and the services behind them."),
    ("Payments", "Taking and making payments, from parking fines to council tax."),
    ("Procurement", "Buying software and services, contracts and working with suppliers."),
    ("Open source", "Publishing code in the open and reusing other people's."),
    ("Data", "Data standards, sharing and dashboards."),
];

const ORGANISATIONS: &[(&str, OrganisationKind, &str)] = &[
    ("Barsetshire County Council", OrganisationKind::Council, "https://barsetshire.example.gov.uk"),
    ("Wessex District Council", OrganisationKind::Council, "https://wessex.example.gov.uk"),
    ("Department for Digital Services", OrganisationKind::CentralGovernment, "https://dds.example.gov.uk"),
    ("Middlemarch NHS Trust", OrganisationKind::Nhs, "https://middlemarch.example.nhs.uk"),
    ("Tea & Code Cooperative", OrganisationKind::Supplier, "https://teaandcode.example.coop"),
];

/// Display name, email, organisation (index), bio.
const MEMBERS: &[(&str, &str, usize, &str)] = &[
    ("Ada Lovelace", "ada@example.org", 0, "Service owner for waste and recycling."),
    ("Grace Hopper", "grace@example.org", 0, "Developer; likes boring technology that works."),
    ("Mary Seacole", "mary@example.org", 3, "User researcher in outpatient services."),
    ("Alan Turing", "alan@example.org", 2, "Technical architect; open standards and open source."),
    ("Octavia Hill", "octavia@example.org", 1, "Housing services lead."),
    ("Tim Berners-Lee", "tim@example.org", 4, "Consultant; builds GOV.UK-style services for councils."),
    ("Florence Nightingale", "florence@example.org", 3, "Data analyst; dashboards that people actually read."),
    ("Isambard Brunel", "isambard@example.org", 1, "Procurement manager who learned to write user stories."),
];

/// Title, summary, phase, author, co-author, topics, body.
type Story = (&'static str, &'static str, Phase, usize, Option<usize>, &'static [usize], &'static str);

const CASE_STUDIES: &[Story] = &[
    (
        "Bin collection reminders by text",
        "Residents sign up once and get a text the evening before collection. Missed collections fell by a third in six months.",
        Phase::Live, 0, Some(1), &[0, 4],
        "## What we did\n\nWe interviewed 24 residents who had reported a missed collection. Most had simply forgotten which bin went out which week.\n\nWe built a sign-up form and a nightly job that sends texts through GOV.UK Notify.\n\n## What happened\n\n- 11,000 households signed up in the first three months\n- reports of missed collections fell by 34%\n\n## What we would do differently\n\nTalk to the crews earlier: @grace-hopper found that route changes were the real cause of many misses.",
    ),
    (
        "An accessibility audit of our parking permit service",
        "We commissioned an audit, fixed 41 issues in-house and wrote up the ones other councils are likely to share.",
        Phase::Live, 3, None, &[1],
        "## Why\n\nThe accessibility regulations require it, and our permit form had a 30% drop-out rate on mobile.\n\n## The common problems\n\n1. Error messages not linked to their fields\n2. Date inputs with a single field and a picker\n3. Time-outs with no warning\n\nThe fixes were mostly small. The audit report template is attached for anyone to reuse.",
    ),
    (
        "Researching outpatient letters with patients",
        "Patients told us appointment letters were confusing; we rewrote them with them and cut missed appointments.",
        Phase::Beta, 2, Some(6), &[2],
        "## Research\n\nWe ran 15 sessions in waiting rooms. People brought their letters and highlighted what confused them.\n\n> \"I thought the date at the top was my appointment.\"\n\n## Result\n\nThe new letter puts the appointment first. In the beta, did-not-attend rates fell from 9% to 7%.",
    ),
    (
        "Moving housing repairs reporting online",
        "Tenants can report a repair with photos at any time; the contact centre handles fewer calls and better reports.",
        Phase::Beta, 4, None, &[3, 2],
        "## The problem\n\nMost repair reports came by phone between 9 and 10am, and half needed a follow-up visit just to see the problem.\n\n## What we built\n\nA form that asks where the problem is, room by room, and lets tenants add photos.\n\n## Next\n\nWe are adding appointment booking in the alpha for gas safety checks.",
    ),
    (
        "Buying a case management system with user needs, not features",
        "We replaced a 400-line requirements spreadsheet with 30 user needs, and got better bids.",
        Phase::Live, 7, Some(5), &[5],
        "## Before\n\nOur tender listed 400 features. Suppliers ticked every box.\n\n## After\n\nWe wrote 30 user needs and asked suppliers to show, not tell, how they met them in a demo with real users.\n\nThe contract template is published as an artefact for reuse.",
    ),
    (
        "Publishing our council tax calculator as open source",
        "We put the calculator's code in the open; two other councils now run it and contribute fixes.",
        Phase::Live, 3, Some(1), &[6, 4],
        "## Why open\n\nEvery council calculates the same discounts. We saw no reason to each build our own.\n\n## How it went\n\nThe first pull request from another council arrived within a month. The code is on our public repository under the Open Government Licence.",
    ),
    (
        "A data standard for bin collection days",
        "Councils publish collection calendars in one format, so apps and voice assistants can read them.",
        Phase::Alpha, 6, Some(0), &[7, 0],
        "## The idea\n\nEvery council publishes collection days differently: PDFs, web pages, images.\n\n## The alpha\n\nWe drafted a small JSON format and converted three councils' calendars. Feedback welcome: mention @florence-nightingale.",
    ),
    (
        "Discovery: paying for school meals",
        "We looked at how parents pay for school meals across 40 schools and found six different systems.",
        Phase::Discovery, 5, None, &[4, 2],
        "## What we found\n\n- six payment systems across 40 schools\n- parents with children at two schools used two systems\n- top-ups failed silently\n\nWe recommend one supplier framework and a shared account for parents.",
    ),
];

/// Title, kind, status, licence, sharer (member index), case study, adapted from
/// (artefact index), topics, address, description.
type Made = (
    &'static str,
    ArtefactKind,
    ArtefactStatus,
    &'static str,
    usize,
    Option<usize>,
    Option<usize>,
    &'static [usize],
    &'static str,
    &'static str,
);

const ARTEFACTS: &[Made] = &[
    (
        "Bin collection reminder service",
        ArtefactKind::Code,
        ArtefactStatus::InUse,
        "MIT",
        1,
        Some(0),
        None,
        &[0, 6],
        "https://code.barsetshire.example.gov.uk/bin-reminders",
        "The sign-up form and nightly job behind our collection reminders. Sends texts through GOV.UK Notify; \
         configure your rounds in one CSV file.",
    ),
    (
        "Accessibility audit report template",
        ArtefactKind::TemplateOrDocument,
        ArtefactStatus::InUse,
        "OGL-UK-3.0",
        3,
        Some(1),
        None,
        &[1],
        "https://dds.example.gov.uk/templates/accessibility-audit",
        "A report template that groups audit findings by the WCAG success criterion and by who fixes them, with \
         an accessibility statement to match.",
    ),
    (
        "Appointment-first outpatient letter",
        ArtefactKind::DesignPattern,
        ArtefactStatus::Experimental,
        "OGL-UK-3.0",
        2,
        Some(2),
        None,
        &[2],
        "https://middlemarch.example.nhs.uk/patterns/appointment-letter",
        "Put the appointment (what, when, where) first, in a box; everything else after. Tested with 15 patients.",
    ),
    (
        "User-needs tender for case management",
        ArtefactKind::ProcurementOrContract,
        ArtefactStatus::InUse,
        "OGL-UK-3.0",
        7,
        Some(4),
        None,
        &[5],
        "https://wessex.example.gov.uk/procurement/user-needs-tender",
        "Thirty user needs and a demo script in place of a 400-line requirements spreadsheet. Adapt the needs; \
         keep the demo.",
    ),
    (
        "Council tax discount calculator",
        ArtefactKind::Code,
        ArtefactStatus::InUse,
        "MIT",
        3,
        Some(5),
        None,
        &[6, 4],
        "https://code.dds.example.gov.uk/council-tax-calculator",
        "Works out single-person, student and disability discounts. Rules live in one YAML file per council.",
    ),
    (
        "Bin collection days data standard",
        ArtefactKind::Dataset,
        ArtefactStatus::Experimental,
        "CC-BY-4.0",
        6,
        Some(6),
        None,
        &[7, 0],
        "https://middlemarch.example.nhs.uk/data/bin-days",
        "A JSON format for collection calendars, with converted calendars from three councils to try it on.",
    ),
    (
        "Wessex council tax calculator",
        ArtefactKind::Code,
        ArtefactStatus::Experimental,
        "MIT",
        4,
        None,
        Some(4),
        &[6, 4],
        "https://code.wessex.example.gov.uk/council-tax",
        "Our fork of the DDS calculator with Wessex's second-homes premium added; we send fixes upstream.",
    ),
];

/// Artefact (index), organisation (index), note.
const REUSES: &[(usize, usize, &str)] = &[
    (1, 1, "We used the template for our planning portal audit; the grouping by who fixes what saved a week."),
    (1, 3, "Adapted for our outpatient booking service's audit."),
    (4, 1, "Running it in production since April with our own rules file."),
    (0, 1, "Reused the nightly job for garden waste renewals."),
    (3, 0, "We used the demo script to buy our new planning system."),
];

/// Case study (index), the note on what changed, and what the update added to its body.
const UPDATES: &[(usize, &str, &str)] = &[(
    0,
    "Added what happened a year on.",
    "\n\n## A year on\n\nMissed collections have stayed 30% lower, and 19,000 households now get a text.",
)];

/// Artefact (index), the note on what changed, and what the update added to its
/// description: an artefact's history.
const ARTEFACT_UPDATES: &[(usize, &str, &str)] = &[(
    1,
    "Added the WCAG 2.2 criteria.",
    "\n\nNow covers the nine success criteria added in WCAG 2.2, such as focus not obscured and target size.",
)];

/// Artefact (index), member (index), story: colleagues telling their own story of a
/// reuse their organisation recorded (see `REUSES`).
const COLLEAGUE_STORIES: &[(usize, usize, &str)] = &[
    (1, 7, "I used its list of common problems to write the accessibility clauses in our next tender."),
    (1, 6, "Its issue counts now feed the dashboard our board sees every month."),
];

/// Case study (index), commenter (member index), text, replies (member index, text).
type Conversation = (usize, usize, &'static str, &'static [(usize, &'static str)]);

const COMMENTS: &[Conversation] = &[
    (
        0,
        4,
        "We see the same with route changes. @grace-hopper did you connect the reminders to the crews' rounds?",
        &[(1, "Not yet: the rounds change in a spreadsheet the crews own. That is our next piece of work.")],
    ),
    (1, 2, "The point about linked error messages is the one we find everywhere. Thank you for writing it up.", &[]),
    (
        5,
        4,
        "We run this now. Upstreaming our changes was easier than expected.",
        &[(3, "Glad to hear it, @octavia-hill!")],
    ),
];

pub async fn demo(db: &Db) -> anyhow::Result<String> {
    let existing: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM members").fetch_one(&db.pool).await?;
    if existing > 0 {
        bail!("this instance already has {existing} members; seed --demo only fills an empty one");
    }
    let password: String = rand::thread_rng().sample_iter(&Alphanumeric).take(16).map(char::from).collect();
    let hash = passwords::hash(password.clone()).await.map_err(AppError::into_anyhow)?;

    let mut members = Vec::new();
    for (i, (name, email, _, bio)) in MEMBERS.iter().enumerate() {
        let role = if i == 0 { Role::Admin } else { Role::Member };
        let member =
            accounts::insert_member(db, NewMember { email, display_name: name, password_hash: Some(&hash), role })
                .await
                .map_err(AppError::into_anyhow)?
                .context("a demo email was taken")?;
        let changes = accounts::ProfileChanges { display_name: None, bio: Some(bio.to_string()), time_zone: None };
        accounts::update_profile(db, member.id, &changes).await.map_err(AppError::into_anyhow)?;
        // Demo members' addresses count as verified (which also schedules their digests),
        // so the demo shows mail as members would get it.
        accounts::recovery::mark_verified_now(db, member.id, &member.email).await.map_err(AppError::into_anyhow)?;
        members.push(member);
    }

    let mut topic_ids = Vec::new();
    for (name, description) in TOPICS {
        let topic = topics::create(db, name, description)
            .await
            .map_err(AppError::into_anyhow)?
            .context("a demo topic was taken")?;
        topic_ids.push(topic.id);
    }

    // Members follow topics before anything is published, so the demo opens with
    // notifications to read (and digest rows waiting).
    for (member, topic, level) in [
        (0, 0, FollowLevel::Watching),
        (0, 1, FollowLevel::Watching),
        (0, 3, FollowLevel::Digest),
        (2, 1, FollowLevel::Digest),
        (4, 0, FollowLevel::Watching),
        (7, 2, FollowLevel::Watching),
    ] {
        let target = follows::Target { type_name: "Topic", id: topic_ids[topic] };
        follows::set(db, members[member].id, target, level).await.map_err(AppError::into_anyhow)?;
    }

    // Each organisation is created by its first demo member; the others ask to join and
    // are approved, as they would be.
    let mut organisation_ids: HashMap<usize, i64> = HashMap::new();
    for (index, (name, kind, website)) in ORGANISATIONS.iter().enumerate() {
        let founders: Vec<usize> = MEMBERS.iter().enumerate().filter(|(_, m)| m.2 == index).map(|(i, _)| i).collect();
        let Some((&first, rest)) = founders.split_first() else { continue };
        let new = NewOrganisation { name, kind: *kind, website: Some(website) };
        let organisation = organisations::create(db, members[first].id, &new).await.map_err(AppError::into_anyhow)?;
        for &other in rest {
            organisations::request_to_join(db, organisation.id, members[other].id)
                .await
                .map_err(AppError::into_anyhow)?;
            organisations::decide(db, organisation.id, members[other].id, true, members[first].id)
                .await
                .map_err(AppError::into_anyhow)?;
        }
        organisation_ids.insert(index, organisation.id);
    }

    // The first case study's update shows a chart its author uploaded.
    let chart = bar_chart(&[120, 112, 104, 95, 88, 77, 70, 63, 55, 49, 44, 40]);
    let processed = uploads::processing::process(&chart).map_err(|refused| anyhow::anyhow!("{refused:?}"))?;
    let alt = "Bar chart: missed bin collections a month fell from 120 in January to 40 in December.";
    let chart = uploads::store(db, members[CASE_STUDIES[0].3].id, alt, &processed, i64::MAX)
        .await
        .map_err(AppError::into_anyhow)?
        .map_err(|usage| anyhow::anyhow!("the demo chart is over the quota: {usage:?}"))?;

    let mut case_study_ids = Vec::new();
    for (title, summary, phase, author, co_author, topics, body) in CASE_STUDIES {
        let author_member = &members[*author];
        let fields = Fields {
            title: title.to_string(),
            summary: summary.to_string(),
            body_source: body.to_string(),
            phase: *phase,
            organisation_id: organisation_ids.get(&MEMBERS[*author].2).copied(),
            topic_ids: topics.iter().map(|t| topic_ids[*t]).collect(),
            co_author_ids: co_author.map(|c| vec![members[c].id]).unwrap_or_default(),
        };
        let case_study = case_studies::create(db, author_member.id, &fields).await.map_err(AppError::into_anyhow)?;
        // Naming a co-author invites them; the demo's co-authors have said yes.
        for co_author_id in &fields.co_author_ids {
            case_studies::coauthors::respond(db, case_study.id, *co_author_id, true)
                .await
                .map_err(AppError::into_anyhow)?;
        }
        case_studies::set_status(db, case_study.id, CaseStudyStatus::Published, author_member.id)
            .await
            .map_err(AppError::into_anyhow)?;
        // Some have been updated since, with a note saying what changed (their history).
        for (index, change_note, more) in UPDATES.iter().filter(|u| CASE_STUDIES[u.0].0 == *title) {
            let picture = if *index == 0 { format!("\n\n{}", chart.markdown_snippet()) } else { String::new() };
            let updated = Fields { body_source: format!("{body}{more}{picture}"), ..fields.clone() };
            case_studies::update(db, case_study.id, case_study.version, author_member.id, &updated, change_note)
                .await
                .map_err(AppError::into_anyhow)?;
        }
        case_study_ids.push(case_study.id);
    }

    let mut artefact_ids = Vec::new();
    for (title, kind, status, licence, sharer, case_study, adapted_from, topics, url, description) in ARTEFACTS {
        let fields = artefacts::Fields {
            title: title.to_string(),
            kind: *kind,
            description_source: description.to_string(),
            url: url.to_string(),
            licence: licence.to_string(),
            status: *status,
            organisation_id: organisation_ids.get(&MEMBERS[*sharer].2).copied(),
            adapted_from_id: adapted_from.map(|a| artefact_ids[a]),
            topic_ids: topics.iter().map(|t| topic_ids[*t]).collect(),
            case_study_ids: case_study.map(|c| vec![case_study_ids[c]]).unwrap_or_default(),
            publiccode: None,
        };
        let artefact = artefacts::create(db, members[*sharer].id, &fields).await.map_err(AppError::into_anyhow)?;
        let index = artefact_ids.len();
        artefact_ids.push(artefact.id);
        if let Some((_, change_note, more)) = ARTEFACT_UPDATES.iter().find(|u| u.0 == index) {
            let updated = artefacts::Fields { description_source: format!("{description}{more}"), ..fields };
            let outcome =
                artefacts::update(db, artefact.id, artefact.version, members[*sharer].id, &updated, change_note)
                    .await
                    .map_err(AppError::into_anyhow)?;
            let artefacts::EditOutcome::Saved(_) = outcome else { bail!("a demo artefact changed while seeding") };
        }
    }
    for (artefact, organisation, note) in REUSES {
        let recorder = MEMBERS.iter().position(|m| m.2 == *organisation).context("an organisation has no member")?;
        reuse::record(db, artefact_ids[*artefact], organisation_ids[organisation], note, None, members[recorder].id)
            .await
            .map_err(AppError::into_anyhow)?;
    }
    for (artefact, member, story) in COLLEAGUE_STORIES {
        let organisation = organisation_ids[&MEMBERS[*member].2];
        reuse::record(db, artefact_ids[*artefact], organisation, story, None, members[*member].id)
            .await
            .map_err(AppError::into_anyhow)?;
    }
    for (case_study, commenter, text, replies) in COMMENTS {
        let subject = Subject::CaseStudy(case_study_ids[*case_study]);
        let posted =
            comments::post(db, subject, None, members[*commenter].id, text).await.map_err(AppError::into_anyhow)?;
        let Posted::Done(comment) = posted else { bail!("a demo conversation was full") };
        for (replier, reply) in *replies {
            comments::post(db, subject, Some(&comment), members[*replier].id, reply)
                .await
                .map_err(AppError::into_anyhow)?;
        }
    }
    // A meetup group with a monthly series on the second Thursday, starting next month,
    // and some members already going to the first.
    let group = meetups::create(
        db,
        members[0].id,
        "TeaCamp Barsetshire",
        "Tea, cake and talking shop for anyone building public services in and around Barsetshire. \
         Bring a problem; leave with three people who have solved it.",
        "South West",
        &[topic_ids[2]],
    )
    .await
    .map_err(AppError::into_anyhow)?;
    for member in &members[1..5] {
        meetups::set_role(db, group.id, member.id, meetups::GroupRole::Member).await.map_err(AppError::into_anyhow)?;
    }
    let today = jiff::Zoned::now().with_time_zone(jiff::tz::TimeZone::get("Europe/London")?).date();
    let next_month = today.first_of_month().checked_add(jiff::Span::new().months(1))?;
    let first = next_month.nth_weekday_of_month(2, jiff::civil::Weekday::Thursday)?.at(16, 0, 0, 0);
    let rule = Rule {
        frequency: Frequency::MonthlyByWeekday,
        weekday_ordinal: Some(2),
        start: first,
        duration_minutes: 120,
        time_zone: "Europe/London".into(),
        end: SeriesEnd::Count(6),
    };
    let fields = meetups::events::Fields {
        title: "TeaCamp Barsetshire".into(),
        description: "An informal hour or two: **introductions**, then whatever people bring.".into(),
        time_zone: "Europe/London".into(),
        local_start: first,
        local_end: first.checked_add(jiff::SignedDuration::from_hours(2))?,
        venue_name: "The Old Library Café".into(),
        venue_address: "1 Cathedral Close, Barchester".into(),
        venue_directions: "Up the stairs past the map room.".into(),
        online_url: None,
        capacity: Some(12),
    };
    let (_, occurrences) = meetups::series::create(db, group.id, members[0].id, &rule, &fields, &[], true)
        .await
        .map_err(AppError::into_anyhow)?;
    if let Some(first) = occurrences.first() {
        for member in &members[1..4] {
            meetups::rsvps::answer(db, first.id, member.id, true).await.map_err(AppError::into_anyhow)?.ok();
        }
    }

    // A few members found the first case studies useful.
    for (case_study, member) in [(0, 4), (0, 2), (1, 0), (1, 4), (1, 7), (4, 0), (5, 4)] {
        marks::set(db, case_study_ids[case_study], members[member].id, Mark::Useful, true)
            .await
            .map_err(AppError::into_anyhow)?;
    }

    let dispatched = dispatch::dispatch_pending(db).await.map_err(AppError::into_anyhow)?;

    Ok(format!(
        "Seeded {} members, {} organisations, {} topics, {} case studies, {} artefacts, {} comments and a meetup \
         group with {} meetups scheduled; {dispatched} notifications are waiting to be read.\n\
         Sign in as {} (an administrator) or any other demo member with the password {password}",
        MEMBERS.len(),
        organisation_ids.len(),
        TOPICS.len(),
        CASE_STUDIES.len(),
        ARTEFACTS.len(),
        COMMENTS.iter().map(|c| 1 + c.3.len()).sum::<usize>(),
        occurrences.len(),
        MEMBERS[0].1,
    ))
}

/// A bar chart as a PNG: one bar a month, in the site's blue on white, tallest 120.
fn bar_chart(values: &[u32]) -> Vec<u8> {
    let (width, height, bar, gap) = (960u32, 480u32, 60u32, 18u32);
    let left = (width - values.len() as u32 * (bar + gap) + gap) / 2;
    let image = image::RgbImage::from_fn(width, height, |x, y| {
        let column = x.checked_sub(left).map(|x| (x / (bar + gap), x % (bar + gap)));
        let top = |value: u32| height - 40 - value * (height - 80) / 120;
        match column {
            Some((i, offset))
                if offset < bar && (i as usize) < values.len() && y >= top(values[i as usize]) && y < height - 40 =>
            {
                image::Rgb([0x1d, 0x70, 0xb8])
            }
            _ if y == height - 40 => image::Rgb([0x0b, 0x0c, 0x0c]),
            _ => image::Rgb([0xff, 0xff, 0xff]),
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    // Writing a PNG into memory fails only when memory runs out.
    let _ = image.write_to(&mut out, image::ImageFormat::Png);
    out.into_inner()
}
