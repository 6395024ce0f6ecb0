//! `watch`: a live terminal view of every shmfusion channel.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use crossterm::event::{self, Event, KeyCode, KeyEventKind};
use ratatui::layout::{Constraint, Direction, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::widgets::{Block, Borders, Paragraph, Row, Sparkline, Table, TableState};

use crate::objects::{self, Location, Opened, now_ns};

/// Rates are averaged over this window: long enough that one refresh's jitter does not show.
const RATE_WINDOW: Duration = Duration::from_secs(2);

struct Track {
    opened: Opened,
    /// (when, samples written) over the last [`RATE_WINDOW`].
    history: VecDeque<(Instant, u64)>,
    /// Rate per refresh, for the sparkline.
    rates: VecDeque<u64>,
}

impl Track {
    fn rate(&self) -> f64 {
        match (self.history.front(), self.history.back()) {
            (Some(a), Some(b)) if b.0 > a.0 => b.1.saturating_sub(a.1) as f64 / (b.0 - a.0).as_secs_f64(),
            _ => 0.0,
        }
    }
}

fn name(o: &Opened) -> String {
    match &o.object.location {
        Location::Sysv { id, key } if key == "0x00000000" => format!("id {id}"),
        Location::Sysv { key, .. } => key.clone(),
        Location::Posix { name } => name.clone(),
    }
}

fn scan(tracks: &mut BTreeMap<String, Track>) {
    let Ok(all) = objects::all() else { return };
    let mut seen = Vec::new();
    for o in all.into_iter().filter(|o| o.object.shmfusion.is_some()) {
        let n = name(&o);
        seen.push(n.clone());
        tracks.entry(n).or_insert_with(|| Track {
            opened: o,
            history: VecDeque::new(),
            rates: VecDeque::new(),
        });
    }
    tracks.retain(|n, _| seen.contains(n));
}

/// Runs until `q` or Esc.
pub fn run(interval_ms: u64) -> std::io::Result<()> {
    let mut terminal = ratatui::init();
    let result = event_loop(&mut terminal, Duration::from_millis(interval_ms.max(50)));
    ratatui::restore();
    result
}

fn event_loop(terminal: &mut ratatui::DefaultTerminal, interval: Duration) -> std::io::Result<()> {
    let mut tracks = BTreeMap::new();
    let mut selected = TableState::default().with_selected(Some(0));
    let mut last_scan = Instant::now() - Duration::from_secs(10);
    loop {
        if last_scan.elapsed() >= Duration::from_secs(1) {
            scan(&mut tracks);
            last_scan = Instant::now();
        }
        let now = Instant::now();
        for t in tracks.values_mut() {
            t.opened.refresh();
            let written = t.opened.object.shmfusion.as_ref().and_then(|s| s.written).unwrap_or(0);
            t.history.push_back((now, written));
            while t.history.front().is_some_and(|(at, _)| now - *at > RATE_WINDOW) {
                t.history.pop_front();
            }
            let rate = t.rate().round() as u64;
            t.rates.push_back(rate);
            if t.rates.len() > 120 {
                t.rates.pop_front();
            }
        }
        let sel = selected.selected().unwrap_or(0).min(tracks.len().saturating_sub(1));
        selected.select(Some(sel));
        terminal.draw(|f| draw(f, &tracks, &mut selected))?;
        if event::poll(interval)? {
            if let Event::Key(k) = event::read()? {
                if k.kind == KeyEventKind::Press {
                    match k.code {
                        KeyCode::Char('q') | KeyCode::Esc => return Ok(()),
                        KeyCode::Down | KeyCode::Char('j') => {
                            selected.select(Some((sel + 1).min(tracks.len().saturating_sub(1))))
                        }
                        KeyCode::Up | KeyCode::Char('k') => selected.select(Some(sel.saturating_sub(1))),
                        _ => {}
                    }
                }
            }
        }
    }
}

fn draw(f: &mut ratatui::Frame, tracks: &BTreeMap<String, Track>, selected: &mut TableState) {
    let areas = Layout::default()
        .direction(Direction::Vertical)
        .constraints([Constraint::Min(6), Constraint::Length(5), Constraint::Length(9)])
        .split(f.area());
    let now = now_ns();
    let rows: Vec<Row> = tracks
        .iter()
        .map(|(n, t)| {
            let s = t.opened.object.shmfusion.as_ref();
            let writer = s.and_then(|s| s.writer).map_or("none".to_owned(), |p| {
                format!("{} {}", p.pid, if p.alive { p.liveness } else { "DEAD" })
            });
            let lag = s
                .and_then(|s| s.last_write_ns)
                .map_or("-".to_owned(), |t| format!("{:.1}", now.saturating_sub(t) as f64 / 1e6));
            Row::new(vec![
                n.clone(),
                s.map_or(String::new(), |s| s.kind.clone()),
                s.map_or(String::new(), |s| s.element_type.clone()),
                format!("{:.1}", t.rate()),
                lag,
                writer,
                s.map_or("-".into(), |s| format!("{}/{}", s.fill.unwrap_or(0), s.capacity)),
                s.and_then(|s| s.written).unwrap_or(0).to_string(),
            ])
        })
        .collect();
    let header = Row::new([
        "channel", "kind", "type", "rate Hz", "lag ms", "writer", "fill", "written",
    ])
    .style(Style::default().add_modifier(Modifier::BOLD));
    let widths = [
        Constraint::Length(12),
        Constraint::Length(15),
        Constraint::Length(18),
        Constraint::Length(9),
        Constraint::Length(9),
        Constraint::Length(13),
        Constraint::Length(11),
        Constraint::Length(9),
    ];
    let table = Table::new(rows, widths)
        .header(header)
        .row_highlight_style(Style::default().add_modifier(Modifier::REVERSED))
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" shmfusion watch (Up/Down select, q quit) "),
        );
    f.render_stateful_widget(table, areas[0], selected);
    let chosen = selected.selected().and_then(|i| tracks.values().nth(i));
    let data: Vec<u64> = chosen.map(|t| t.rates.iter().copied().collect()).unwrap_or_default();
    f.render_widget(
        Sparkline::default()
            .block(Block::default().borders(Borders::ALL).title(" rate "))
            .data(&data),
        areas[1],
    );
    let latest = chosen
        .and_then(|t| {
            let view = t.opened.view()?;
            let written = view.state().written.checked_sub(1)?;
            let mut buf = vec![0u8; view.element_size()];
            view.read(written, &mut buf).ok()?;
            Some(match t.opened.element {
                Some(e) => e.to_json(&buf).to_string(),
                None => buf.iter().map(|b| format!("{b:02x}")).collect(),
            })
        })
        .unwrap_or_else(|| "no sample".into());
    f.render_widget(
        Paragraph::new(latest)
            .wrap(ratatui::widgets::Wrap { trim: true })
            .block(Block::default().borders(Borders::ALL).title(" latest ")),
        areas[2],
    );
}
