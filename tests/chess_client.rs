//! The chess terminal client's state and screens (`ui.rs`), without a terminal or a server:
//! what a player is told when typing at the wrong time, how moves and captures are announced,
//! that quitting or resigning asks first, that stale messages go, how the clock is shown, and
//! the exit status of each ending. `chess_cli.rs` drives the real binary through pipes.

#[path = "../examples/chinese_chess_game/board.rs"]
#[allow(dead_code)]
mod board;
#[path = "../examples/chinese_chess_game/protocol.rs"]
#[allow(dead_code)]
mod protocol;
#[path = "../examples/chinese_chess_game/rules.rs"]
#[allow(dead_code)]
mod rules;
#[path = "../examples/chinese_chess_game/ui.rs"]
#[allow(dead_code)]
mod ui;
#[path = "../examples/chinese_chess_game/view.rs"]
#[allow(dead_code)]
mod view;

use std::time::{Duration, Instant};

use board::{Move, Side};
use protocol::{ByeReason, EndReason, ErrKind, Reply, Request};
use ui::{Action, Outcome, Phase, Ui};

fn mv(s: &str) -> Move {
    Move::parse(s).unwrap()
}

/// A client in a game as `side`, with a minute on red's clock from `now`.
fn in_game(side: Side, now: Instant) -> Ui {
    let mut ui = Ui::new(false);
    for reply in [Reply::Welcome, Reply::Wait, Reply::Start(side), Reply::Turn(Side::Red, 60_000)] {
        ui.server(reply, now);
    }
    ui
}

#[test]
fn a_waiting_player_who_types_a_move_is_told_the_game_has_not_started() {
    let now = Instant::now();
    let mut ui = Ui::new(false);
    ui.server(Reply::Welcome, now);
    ui.server(Reply::Wait, now);
    assert_eq!(ui.key("h2 e2"), Action::Nothing);
    let screen = ui.screen(now);
    assert!(screen.contains("You are waiting for an opponent: the game has not started yet."), "{screen}");
    assert!(!screen.contains("not your turn"), "{screen}");
    // And on the opponent's turn it is the opponent that is named.
    let mut ui = in_game(Side::Black, now);
    ui.key("h9 g7");
    assert!(ui.screen(now).contains("It is red's turn: wait for your opponent's move."));
}

#[test]
fn moves_and_captures_are_announced() {
    let now = Instant::now();
    // Red's cannon takes black's horse over black's cannon (the screen).
    let mut red = in_game(Side::Red, now);
    assert_eq!(red.key("b2 b9"), Action::Send(Request::Move(mv("b2 b9"))));
    red.server(Reply::Ok, now);
    let screen = red.screen(now);
    assert!(screen.contains("You moved b2 b9: cannon takes horse."), "{screen}");

    let mut black = in_game(Side::Black, now);
    black.server(Reply::Move(mv("b2 b9")), now);
    let screen = black.screen(now);
    assert!(screen.contains("Your opponent moved b2 b9: cannon takes your horse."), "{screen}");
    black.server(Reply::Move(mv("h2 e2")), now); // (not legal here: the board is the server's word)
    assert!(black.screen(now).contains("Your opponent moved h2 e2 (cannon)."));
}

#[test]
fn quitting_or_resigning_a_game_asks_first_and_says_what_it_costs() {
    let now = Instant::now();
    let mut ui = in_game(Side::Red, now);
    assert_eq!(ui.key("quit"), Action::Nothing);
    let screen = ui.screen(now);
    assert!(screen.contains("Quitting now forfeits the game: your opponent wins."), "{screen}");
    assert!(screen.contains("Type quit again to leave"), "{screen}");
    // Anything else goes on with the game, and is taken as input.
    assert_eq!(ui.key("h2"), Action::Nothing);
    assert_eq!(ui.phase, Phase::To(board::Square::parse("h2").unwrap()));
    assert!(!ui.screen(now).contains("forfeits"), "the question is gone once answered");
    ui.key("quit");
    assert_eq!(ui.key("quit"), Action::Leave);
    assert_eq!(ui.outcome, Some(Outcome::Quit));
    assert!(ui.left_a_game());

    let mut ui = in_game(Side::Black, now);
    assert_eq!(ui.key("resign"), Action::Nothing);
    assert!(ui.screen(now).contains("Resign this game? Type resign again to confirm"));
    assert_eq!(ui.key("resign"), Action::Send(Request::Resign));

    // Not in a game: quit leaves at once, and there is nothing to resign.
    let mut ui = Ui::new(false);
    ui.server(Reply::Wait, now);
    assert_eq!(ui.key("resign"), Action::Nothing);
    assert!(ui.screen(now).contains("There is no game to resign yet."));
    assert_eq!(ui.key("quit"), Action::Leave);
    assert!(!ui.left_a_game());
}

#[test]
fn old_messages_go_once_something_new_happens() {
    let now = Instant::now();
    let mut ui = in_game(Side::Red, now);
    ui.key("z9");
    assert!(ui.screen(now).contains("\"z9\" is not a square"));
    ui.key("h2");
    assert!(!ui.screen(now).contains("is not a square"), "{}", ui.screen(now));
    // A move the rules refuse is explained by the client, and not sent.
    assert_eq!(ui.key("b0 d1"), Action::Nothing);
    assert!(ui.screen(now).contains("b0 d1 is not allowed: the horse's leg is blocked at c0."));
    // A server refusal stays until the next move is accepted.
    assert_eq!(ui.key("h2 e2"), Action::Send(Request::Move(mv("h2 e2"))));
    ui.server(Reply::Err(ErrKind::Illegal, "something the server saw".into()), now);
    assert!(ui.screen(now).contains("The server refused that: something the server saw."));
    assert_eq!(ui.key("h2 e2"), Action::Send(Request::Move(mv("h2 e2"))));
    ui.server(Reply::Ok, now);
    let screen = ui.screen(now);
    assert!(!screen.contains("refused") && !screen.contains("not allowed"), "{screen}");
}

#[test]
fn the_move_clock_is_shown_and_counts_down() {
    let now = Instant::now();
    let mut ui = in_game(Side::Red, now);
    assert!(ui.screen(now).contains("Your move (red), 60 s left"), "{}", ui.screen(now));
    assert!(ui.screen(now + Duration::from_millis(30_500)).contains("30 s left"));
    assert_eq!(ui.tick(now + Duration::from_secs(20)), None, "no redraw while the player types");
    let warning = ui.tick(now + Duration::from_secs(52)).expect("a warning with 8 s left");
    assert!(warning.contains("8 s left to move, or you lose on time!"), "{warning}");
    assert_eq!(ui.tick(now + Duration::from_secs(53)), None, "warned once");
    // The opponent's clock: the whole screen is redrawn each tick.
    ui.key("h2 e2");
    ui.server(Reply::Ok, now);
    ui.server(Reply::Turn(Side::Black, 60_000), now);
    let screen = ui.tick(now + Duration::from_secs(15)).expect("a redraw on the opponent's turn");
    assert!(screen.contains("Waiting for black to move (45 s left)"), "{screen}");
}

#[test]
fn requeue_end_and_bye_are_explained() {
    let now = Instant::now();
    let mut ui = in_game(Side::Black, now);
    ui.server(Reply::Requeue(EndReason::OpponentLeft), now);
    ui.server(Reply::Wait, now);
    assert_eq!(ui.phase, Phase::Waiting);
    assert!(ui.screen(now).contains("Your opponent left before the first move: looking for another opponent."));
    ui.server(Reply::Start(Side::Red), now);
    ui.server(Reply::End(Side::Red, EndReason::Time), now);
    assert!(ui.screen(now).contains("You win: your opponent ran out of time."));

    let mut ui = Ui::new(false);
    ui.server(Reply::Wait, now);
    ui.server(Reply::Bye(ByeReason::WaitTimeout), now);
    assert!(ui.screen(now).contains("The server closed the connection: no opponent came; try again later."));
    assert_eq!(ui.outcome, Some(Outcome::Dismissed));
}

#[test]
fn the_exit_status_is_non_zero_unless_the_game_or_the_player_ended_it() {
    let now = Instant::now();
    let mut gone = in_game(Side::Red, now);
    gone.server_gone("the server closed the connection");
    assert!(gone.screen(now).contains("The server went away (the server closed the connection)."));
    assert_eq!(gone.outcome, Some(Outcome::ServerGone));
    assert_eq!(Outcome::ServerGone.exit_code(), 1);
    assert_eq!(Outcome::Dismissed.exit_code(), 1);
    assert_eq!(Outcome::GameOver.exit_code(), 0);
    assert_eq!(Outcome::Quit.exit_code(), 0);
    // After END the connection's close is no news: the game ended it.
    let mut over = in_game(Side::Red, now);
    over.server(Reply::End(Side::Black, EndReason::Resign), now);
    over.server_gone("the server closed the connection");
    assert_eq!(over.outcome, Some(Outcome::GameOver));
    assert!(!over.screen(now).contains("went away"));
}

#[test]
fn without_colour_a_legend_tells_the_sides_apart() {
    let now = Instant::now();
    let screen = in_game(Side::Red, now).screen(now);
    assert!(!screen.contains("\x1b[1;31m"), "no colour asked");
    assert!(screen.contains("red   (simplified):  帅 general  仕 advisor"), "{screen}");
    assert!(screen.contains("black (traditional): 將  士  象  馬  車  砲  卒"), "{screen}");
}
