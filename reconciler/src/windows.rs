//! Freeze windows (`windows:` in `mcp-gitops.yaml`): what is wrong with one as written, and which
//! one is open at an instant. Takes the windows as the model holds them; gives back diagnostics or
//! the open window and when it closes. Pure: no I/O, no clock of its own (the caller says `now`).
//! What an open window holds back is the daemon's to decide (daemon/reconcile.rs `hold`).

use crate::model::{CONFIG_FILE, Code, Diagnostic, Pos, Window};
use croner::Cron;
use croner::parser::{CronParser, Seconds, Year};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

/// A window read and ready to evaluate.
#[derive(Debug, Clone)]
pub struct Schedule {
    pub name: String,
    cron: Cron,
    duration: SignedDuration,
    zone: TimeZone,
}

/// A window open now, and when it closes.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Open {
    pub name: String,
    pub ends_at: Timestamp,
}

/// What is wrong with one field of a window: its key, the message and the fix.
#[derive(Debug)]
pub struct Problem {
    pub field: &'static str,
    pub message: String,
    pub hint: &'static str,
}

impl Schedule {
    pub fn read(window: &Window) -> Result<Schedule, Problem> {
        let zone_name = window.time_zone.as_deref().unwrap_or("UTC");
        let zone = TimeZone::get(zone_name).map_err(|e| Problem {
            field: "timeZone",
            message: format!("window {:?}: time zone {zone_name:?} is unknown: {e}", window.name),
            hint: "use an IANA time zone name such as UTC, Europe/Berlin or America/New_York",
        })?;
        let cron =
            CronParser::builder().seconds(Seconds::Disallowed).year(Year::Disallowed).build().parse(&window.schedule).map_err(|e| {
                Problem {
                    field: "schedule",
                    message: format!(
                        "window {:?}: schedule {:?} is not a valid 5-field cron expression: {e}",
                        window.name, window.schedule
                    ),
                    hint: "write minute hour day-of-month month day-of-week, e.g. \"0 18 * * FRI\" for Fridays at 18:00",
                }
            })?;
        let duration: SignedDuration = window.duration.trim().parse().map_err(|e| Problem {
            field: "duration",
            message: format!("window {:?}: duration {:?} is not a duration: {e}", window.name, window.duration),
            hint: "write a duration such as 2h, 1h 30m, 3d or PT2H",
        })?;
        if !duration.is_positive() {
            return Err(Problem {
                field: "duration",
                message: format!(
                    "window {:?}: duration {:?} is not longer than zero: the window would never be open",
                    window.name, window.duration
                ),
                hint: "write a duration such as 2h, 1h 30m, 3d or PT2H",
            });
        }
        let schedule = Schedule { name: window.name.clone(), cron, duration, zone };
        // A date that never comes ("0 0 30 2 *") opens no window: a mistake, not a freeze.
        if schedule.cron.find_next_occurrence(&Timestamp::UNIX_EPOCH.to_zoned(schedule.zone.clone()), true).is_err() {
            return Err(Problem {
                field: "schedule",
                message: format!("window {:?}: schedule {:?} never matches a date", window.name, window.schedule),
                hint: "check the day of month against the month (February has no 30th)",
            });
        }
        Ok(schedule)
    }

    /// When this window, open at `now`, closes; `None` when it is closed. A window opens at each
    /// time the schedule matches on the wall clock of its zone and stays open `duration` of real time.
    pub fn closes_after(&self, now: Timestamp) -> Option<Timestamp> {
        let opened = self.cron.find_previous_occurrence(&now.to_zoned(self.zone.clone()), true).ok()?;
        let closes = opened.timestamp().checked_add(self.duration).ok()?;
        (closes > now).then_some(closes)
    }
}

/// The windows of `windows` that read; the others are reported by `check` and never applied.
pub fn read(windows: &[Window]) -> Vec<Schedule> {
    windows.iter().filter_map(|w| Schedule::read(w).ok()).collect()
}

/// The window open at `now` that closes last (changes stay held until then), if any.
pub fn open(schedules: &[Schedule], now: Timestamp) -> Option<Open> {
    schedules
        .iter()
        .filter_map(|s| s.closes_after(now).map(|ends_at| Open { name: s.name.clone(), ends_at }))
        .max_by_key(|open| open.ends_at)
}

/// A diagnostic for each window that does not read; `position` finds a JSON pointer in the file.
pub fn check(windows: &[Window], position: impl Fn(&str) -> Option<Pos>) -> Vec<Diagnostic> {
    let mut found = Vec::new();
    for (i, window) in windows.iter().enumerate() {
        if let Err(problem) = Schedule::read(window) {
            let pos =
                position(&format!("/windows/{i}/{}", problem.field)).or_else(|| position(&format!("/windows/{i}"))).unwrap_or_default();
            found.push(
                Diagnostic::error(Code::SchemaViolation, CONFIG_FILE, pos, problem.message)
                    .path(format!("windows[{i}].{}", problem.field))
                    .hint(problem.hint),
            );
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window(schedule: &str, duration: &str, zone: Option<&str>) -> Window {
        Window { name: "release".into(), schedule: schedule.into(), duration: duration.into(), time_zone: zone.map(str::to_string) }
    }

    fn at(text: &str) -> Timestamp {
        text.parse().expect("a timestamp")
    }

    fn closes(schedule: &str, duration: &str, zone: Option<&str>, now: &str) -> Option<Timestamp> {
        Schedule::read(&window(schedule, duration, zone)).expect("a window").closes_after(at(now))
    }

    #[test]
    fn a_window_is_open_from_its_schedule_for_its_duration() {
        // Fridays 18:00 UTC for 2h; 2026-12-04 is a Friday.
        assert_eq!(closes("0 18 * * FRI", "2h", None, "2026-12-04T18:00:00Z"), Some(at("2026-12-04T20:00:00Z")));
        assert_eq!(closes("0 18 * * 5", "2h", None, "2026-12-04T19:59:59Z"), Some(at("2026-12-04T20:00:00Z")));
        assert_eq!(closes("0 18 * * 5", "2h", None, "2026-12-04T20:00:00Z"), None);
        assert_eq!(closes("0 18 * * 5", "2h", None, "2026-12-04T17:59:59Z"), None);
        // A Thursday, same hour: closed.
        assert_eq!(closes("0 18 * * 5", "2h", None, "2026-12-03T19:00:00Z"), None);
        // Past midnight into Saturday, and a weekend freeze written as days.
        assert_eq!(closes("0 18 * * 5", "1h 30m", None, "2026-12-04T19:29:00Z"), Some(at("2026-12-04T19:30:00Z")));
        assert_eq!(closes("0 18 * * 5", "PT62H", None, "2026-12-06T12:00:00Z"), Some(at("2026-12-07T08:00:00Z")));
    }

    #[test]
    fn a_time_zone_follows_its_wall_clock_across_daylight_saving() {
        // 09:00 in Berlin is 08:00 UTC in winter (CET) and 07:00 UTC in summer (CEST).
        let berlin = Some("Europe/Berlin");
        assert_eq!(closes("0 9 * * *", "1h", berlin, "2026-03-28T08:30:00Z"), Some(at("2026-03-28T09:00:00Z")));
        assert_eq!(closes("0 9 * * *", "1h", berlin, "2026-03-29T07:30:00Z"), Some(at("2026-03-29T08:00:00Z")));
        assert_eq!(closes("0 9 * * *", "1h", berlin, "2026-03-28T07:30:00Z"), None);
        // 02:30 does not exist in Berlin on 2026-03-29 (clocks jump 02:00 -> 03:00): the window
        // opens at the first instant after the gap, 03:00 CEST = 01:00 UTC.
        assert_eq!(closes("30 2 * * *", "1h", berlin, "2026-03-29T01:10:00Z"), Some(at("2026-03-29T02:00:00Z")));
        // New York (EST -5, EDT -4) on the Sunday clocks fall back: 18:00 EST = 23:00 UTC.
        let new_york = Some("America/New_York");
        assert_eq!(closes("0 18 * * *", "30m", new_york, "2026-11-01T23:10:00Z"), Some(at("2026-11-01T23:30:00Z")));
        assert_eq!(closes("0 18 * * *", "30m", new_york, "2026-10-31T22:10:00Z"), Some(at("2026-10-31T22:30:00Z")));
    }

    #[test]
    fn of_several_open_windows_the_one_that_closes_last_holds() {
        let windows = [window("0 18 * * *", "1h", None), Window { name: "freeze".into(), ..window("30 17 * * *", "3h", None) }];
        let open = open(&read(&windows), at("2026-12-04T18:15:00Z"));
        assert_eq!(open, Some(Open { name: "freeze".into(), ends_at: at("2026-12-04T20:30:00Z") }));
        assert_eq!(super::open(&read(&windows), at("2026-12-04T21:00:00Z")), None);
    }

    #[test]
    fn a_window_that_does_not_read_names_its_field_and_the_fix() {
        let wrong = |w: Window| Schedule::read(&w).expect_err("a problem");
        let problem = wrong(window("0 18 * *", "2h", None));
        assert_eq!(problem.field, "schedule");
        assert!(problem.message.contains("\"0 18 * *\" is not a valid 5-field cron expression"), "{}", problem.message);
        // Six fields (seconds) are not cron's five.
        assert_eq!(wrong(window("0 0 18 * * 5", "2h", None)).field, "schedule");
        assert_eq!(wrong(window("0 0 30 2 *", "2h", None)).field, "schedule");
        assert_eq!(wrong(window("0 18 * * 5", "two hours", None)).field, "duration");
        assert_eq!(wrong(window("0 18 * * 5", "0s", None)).field, "duration");
        let problem = wrong(window("0 18 * * 5", "2h", Some("Europe/Berlim")));
        assert_eq!(problem.field, "timeZone");
        assert!(problem.hint.contains("IANA"));
    }

    #[test]
    fn check_points_at_the_field() {
        let windows = [window("0 18 * * 5", "2h", None), window("0 18 * * 5", "forever", None)];
        let found = check(&windows, |pointer| (pointer == "/windows/1/duration").then_some(Pos { line: 7, column: 15 }));
        assert_eq!(found.len(), 1);
        let d = &found[0];
        assert_eq!((d.file.as_str(), d.line, d.column), (CONFIG_FILE, 7, 15));
        assert!(d.is_error());
    }
}
