//! Media searches: `entertainment.movie_search`, `tv.show_search`,
//! `books.search`, `music.search` and `video.search`. Requests and
//! normalised answers.
//!
//! Every answer serialises every field, `null` when the answering provider
//! does not know it, so the shape of an answer never depends on which
//! provider gave it.

use serde::{Deserialize, Serialize};

use super::params::Params;
use super::query;
use super::schema::{Alternatives, Param, ParamDefault, ParamKind, ParamTable};
use crate::echo::echo;
use crate::error::{Error, Result};

/// Most results a search may ask for. Providers with smaller pages (OMDb
/// 10, TMDB 20, Gutendex 32) answer with at most one page.
pub const MAX_LIMIT: u8 = 50;

/// Results a search returns unless it asks for another number.
pub const DEFAULT_LIMIT: u8 = 10;

/// Longest search text of a media or medical search, in characters.
pub(crate) const MAX_QUERY_CHARS: u32 = 300;

/// `limit` of a media search: 1 to [`MAX_LIMIT`], default [`DEFAULT_LIMIT`].
const LIMIT: Param = query::limit(DEFAULT_LIMIT as u64, MAX_LIMIT as u64);

/// Reads a search text: trimmed, within its declared length, no control
/// characters.
pub(crate) fn read_text(params: &mut Params, field: &str) -> Result<Option<String>> {
    let Some(text) = params.opt_str(field)? else {
        return Ok(None);
    };
    if text.chars().any(char::is_control) {
        return Err(Error::invalid(field, "must not contain control characters"));
    }
    Ok(Some(text))
}

/// A free-text search: request of `books.search`, `video.search` and
/// `medical.literature_search`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TextQuery {
    /// What to search for.
    pub query: String,
    /// Most results to return (1 to 50, default 10).
    pub limit: u8,
}

impl TextQuery {
    /// The parameters: `query` and `limit`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            query::text(MAX_QUERY_CHARS, "What to search for.", r#""dune""#).required(),
            LIMIT,
        ],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `query` (required) and `limit`.
    pub fn from_params(mut params: Params) -> Result<Self> {
        let query = read_text(&mut params, "query")?.ok_or_else(|| params.missing("query"))?;
        let limit = params.u8("limit")?;
        params.finish()?;
        Ok(Self { query, limit })
    }
}

/// How a title is looked for: by text, or by its IMDb id, which every
/// provider that knows IMDb ids maps to its own id.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TitleLookup {
    /// A free-text title search.
    Text(String),
    /// An IMDb id such as `tt0088247`.
    Imdb(String),
}

/// Request of `entertainment.movie_search` and `tv.show_search`.
///
/// ```
/// use polyrelay::capability::Request;
/// let by_text = Request::parse("entertainment.movie_search", serde_json::json!({"query": "terminator", "year": 1984}));
/// assert!(by_text.is_ok());
/// let by_id = Request::parse("tv.show_search", serde_json::json!({"imdb_id": "tt0903747"}));
/// assert!(by_id.is_ok());
/// assert!(Request::parse("tv.show_search", serde_json::json!({"imdb_id": "0903747"})).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct TitleQuery {
    /// Text or IMDb id.
    pub lookup: TitleLookup,
    /// Only titles first released in this year.
    pub year: Option<u16>,
    /// Most results to return (1 to 50, default 10).
    pub limit: u8,
}

impl TitleQuery {
    /// The parameters: `query` or `imdb_id`, `year` and `limit`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            query::text(
                MAX_QUERY_CHARS,
                "Title words; or give imdb_id instead.",
                r#""terminator""#,
            ),
            Param::new(
                "imdb_id",
                ParamKind::String { max_chars: None },
                "An IMDb id (tt0088247) instead of query.",
                r#""tt0088247""#,
            ),
            Param::new(
                "year",
                ParamKind::Integer {
                    min: 1870,
                    max: 2100,
                },
                "Only titles first released in this year (with query only).",
                "1984",
            ),
            LIMIT,
        ],
        alternatives: Alternatives::ExactlyOne(&[&["query"], &["imdb_id"]]),
    };

    /// Validates parameters: `query` or `imdb_id`, optional `year` (text
    /// searches only) and `limit`.
    pub fn from_params(mut params: Params) -> Result<Self> {
        let query = read_text(&mut params, "query")?;
        let imdb = params.opt_str("imdb_id")?;
        let year = params
            .opt_u64("year")?
            .map(|y| u16::try_from(y).unwrap_or(u16::MAX));
        let limit = params.u8("limit")?;
        params.finish()?;
        let lookup = match (query, imdb) {
            (Some(text), None) => TitleLookup::Text(text),
            (None, Some(id)) => {
                let id = id.to_ascii_lowercase();
                let digits = id.strip_prefix("tt").unwrap_or("");
                if digits.len() < 7 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(Error::invalid(
                        "imdb_id",
                        format!("must look like tt0088247, got {}", echo(&id)),
                    ));
                }
                if year.is_some() {
                    return Err(Error::invalid(
                        "year",
                        "cannot be combined with imdb_id, which names one title",
                    ));
                }
                TitleLookup::Imdb(id)
            }
            (Some(_), Some(_)) => {
                return Err(Error::invalid(
                    "imdb_id",
                    "cannot be combined with query; give one or the other",
                ))
            }
            (None, None) => {
                return Err(Error::invalid(
                    "query",
                    "is required: give query or imdb_id",
                ))
            }
        };
        Ok(Self {
            lookup,
            year,
            limit,
        })
    }

    /// The text or id asked for, as echoed in the answer.
    pub fn label(&self) -> &str {
        match &self.lookup {
            TitleLookup::Text(text) | TitleLookup::Imdb(text) => text,
        }
    }
}

/// Whether a title is a film or a series.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TitleKind {
    /// A film.
    Movie,
    /// A television series.
    Tv,
}

/// An audience rating on a 0–10 scale.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Rating {
    /// The rating, 0 to 10.
    pub value: f64,
    /// Always 10: every provider's rating is converted to this scale.
    pub scale: u8,
    /// How many votes it is based on, when known.
    pub votes: Option<u64>,
}

impl Rating {
    /// A rating on the 0–10 scale; `None` for a missing or zero-vote rating
    /// (providers send 0 for "not rated").
    pub fn out_of_ten(value: Option<f64>, votes: Option<u64>) -> Option<Self> {
        let value = value.filter(|v| *v > 0.0 && *v <= 10.0)?;
        if votes == Some(0) {
            return None;
        }
        Some(Self {
            value,
            scale: 10,
            votes,
        })
    }
}

/// A title's ids at each provider that knows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TitleIds {
    /// TMDB id.
    pub tmdb: Option<u64>,
    /// IMDb id (`tt0088247`).
    pub imdb: Option<String>,
    /// TVmaze id.
    pub tvmaze: Option<u64>,
    /// iTunes track or artist id.
    pub itunes: Option<u64>,
}

/// One film or series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TitleResult {
    /// Film or series.
    pub kind: TitleKind,
    /// Title.
    pub title: String,
    /// Year of first release or first air date.
    pub year: Option<u16>,
    /// First release or first air date, ISO-8601 (`YYYY-MM-DD`, or less
    /// precise when the provider is).
    pub release_date: Option<String>,
    /// Plot summary, plain text.
    pub overview: Option<String>,
    /// Genre names (TMDB genre ids are resolved to names); empty when unknown.
    pub genres: Vec<String>,
    /// Series status (`Running`, `Ended`), when known.
    pub status: Option<String>,
    /// Network or streaming service, when known.
    pub network: Option<String>,
    /// Audience rating.
    pub rating: Option<Rating>,
    /// Poster image URL.
    pub poster_url: Option<String>,
    /// Ids at each provider.
    pub ids: TitleIds,
    /// The title's page at the provider.
    pub url: Option<String>,
}

/// Answer of `entertainment.movie_search` and `tv.show_search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TitleSearch {
    /// The text or IMDb id asked for.
    pub query: String,
    /// Matches the provider reports for the whole search, when it says.
    pub total: Option<u64>,
    /// The titles, best match first.
    pub results: Vec<TitleResult>,
}

impl TitleSearch {
    /// The answer to `query`: only titles of the requested year (for
    /// providers that cannot filter by year themselves), at most `limit`.
    pub fn new(query: &TitleQuery, total: Option<u64>, mut results: Vec<TitleResult>) -> Self {
        if let Some(year) = query.year {
            results.retain(|r| r.year == Some(year));
        }
        results.truncate(usize::from(query.limit));
        Self {
            query: query.label().to_string(),
            total,
            results,
        }
    }
}

/// The name of a TMDB genre id (movie and TV lists), which TMDB search
/// results carry instead of names.
pub fn tmdb_genre(id: u32) -> Option<&'static str> {
    Some(match id {
        28 => "Action",
        12 => "Adventure",
        16 => "Animation",
        35 => "Comedy",
        80 => "Crime",
        99 => "Documentary",
        18 => "Drama",
        10751 => "Family",
        14 => "Fantasy",
        36 => "History",
        27 => "Horror",
        10402 => "Music",
        9648 => "Mystery",
        10749 => "Romance",
        878 => "Science Fiction",
        10770 => "TV Movie",
        53 => "Thriller",
        10752 => "War",
        37 => "Western",
        10759 => "Action & Adventure",
        10762 => "Kids",
        10763 => "News",
        10764 => "Reality",
        10765 => "Sci-Fi & Fantasy",
        10766 => "Soap",
        10767 => "Talk",
        10768 => "War & Politics",
        _ => return None,
    })
}

/// A book's ids at each provider that knows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BookIds {
    /// Open Library work key (`OL893415W`).
    pub openlibrary: Option<String>,
    /// Google Books volume id.
    pub google_books: Option<String>,
    /// Project Gutenberg ebook number.
    pub gutenberg: Option<u64>,
    /// iTunes (Apple Books) id.
    pub itunes: Option<u64>,
}

/// One book.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookResult {
    /// Title.
    pub title: String,
    /// Authors as `First Last`.
    pub authors: Vec<String>,
    /// Year of first publication (of this edition, for providers that only
    /// know editions).
    pub first_published_year: Option<u16>,
    /// ISBN-13s.
    pub isbn13: Vec<String>,
    /// ISBN-10s.
    pub isbn10: Vec<String>,
    /// Languages as ISO 639-1 codes (`en`) where one exists, else as sent.
    pub languages: Vec<String>,
    /// Description, plain text.
    pub description: Option<String>,
    /// Cover image URL.
    pub cover_url: Option<String>,
    /// Number of editions, when known.
    pub edition_count: Option<u32>,
    /// Where to read it free (public-domain texts).
    pub free_read_url: Option<String>,
    /// Ids at each provider.
    pub ids: BookIds,
    /// The book's page at the provider.
    pub url: String,
}

impl BookResult {
    /// Sorts ISBNs into the 13- and 10-digit lists, dropping anything else.
    pub fn add_isbn(&mut self, isbn: &str) {
        let isbn: String = isbn.chars().filter(|c| *c != '-' && *c != ' ').collect();
        let valid = |n: usize| {
            isbn.len() == n
                && isbn
                    .char_indices()
                    .all(|(i, c)| c.is_ascii_digit() || (i == n - 1 && c == 'X'))
        };
        let list = if valid(13) {
            &mut self.isbn13
        } else if valid(10) {
            &mut self.isbn10
        } else {
            return;
        };
        if !list.contains(&isbn) {
            list.push(isbn);
        }
    }
}

/// Answer of `books.search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BookSearch {
    /// The text asked for.
    pub query: String,
    /// Matches the provider reports for the whole search, when it says.
    pub total: Option<u64>,
    /// The books, best match first.
    pub results: Vec<BookResult>,
}

/// A language code as ISO 639-1 (`en`): MARC/ISO 639-2 codes (`eng`,
/// Open Library's form) are mapped for the common languages; two-letter
/// codes are lower-cased; anything else is kept as sent.
pub fn language_code(code: &str) -> String {
    const MARC: &[(&str, &str)] = &[
        ("ara", "ar"),
        ("chi", "zh"),
        ("zho", "zh"),
        ("cze", "cs"),
        ("ces", "cs"),
        ("dan", "da"),
        ("dut", "nl"),
        ("nld", "nl"),
        ("eng", "en"),
        ("fin", "fi"),
        ("fre", "fr"),
        ("fra", "fr"),
        ("ger", "de"),
        ("deu", "de"),
        ("gre", "el"),
        ("ell", "el"),
        ("heb", "he"),
        ("hin", "hi"),
        ("hun", "hu"),
        ("ita", "it"),
        ("jpn", "ja"),
        ("kor", "ko"),
        ("lat", "la"),
        ("nor", "no"),
        ("pol", "pl"),
        ("por", "pt"),
        ("rum", "ro"),
        ("ron", "ro"),
        ("rus", "ru"),
        ("spa", "es"),
        ("swe", "sv"),
        ("tur", "tr"),
        ("ukr", "uk"),
    ];
    let lower = code.trim().to_ascii_lowercase();
    MARC.iter()
        .find(|(marc, _)| *marc == lower)
        .map(|(_, iso)| (*iso).to_string())
        .unwrap_or(lower)
}

/// What a music search looks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MusicKind {
    /// Songs (recordings).
    Track,
    /// Albums (release groups).
    Album,
    /// Artists.
    Artist,
}

/// Request of `music.search`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct MusicQuery {
    /// What to search for.
    pub query: String,
    /// Tracks, albums or artists (default tracks).
    pub kind: MusicKind,
    /// Most results to return (1 to 50, default 10).
    pub limit: u8,
}

impl MusicQuery {
    /// The parameters: `query`, `type` and `limit`.
    pub const PARAMS: ParamTable = ParamTable {
        params: &[
            query::text(MAX_QUERY_CHARS, "What to search for.", r#""daft punk""#).required(),
            Param::new(
                "type",
                ParamKind::Choice {
                    values: &["track", "album", "artist"],
                },
                "What kind of item to find.",
                r#""album""#,
            )
            .or(ParamDefault::Text("track")),
            LIMIT,
        ],
        alternatives: Alternatives::None,
    };

    /// Validates parameters: `query` (required), `type` (`track`, `album`
    /// or `artist`) and `limit`.
    pub fn from_params(mut params: Params) -> Result<Self> {
        let query = read_text(&mut params, "query")?.ok_or_else(|| params.missing("query"))?;
        let kind = match params.str("type")?.as_str() {
            "track" => MusicKind::Track,
            "album" => MusicKind::Album,
            "artist" => MusicKind::Artist,
            other => {
                return Err(Error::invalid(
                    "type",
                    format!("must be track, album or artist, got {}", echo(other)),
                ))
            }
        };
        let limit = params.u8("limit")?;
        params.finish()?;
        Ok(Self { query, kind, limit })
    }
}

/// A music item's ids at each provider that knows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MusicIds {
    /// MusicBrainz id (recording, release group or artist MBID).
    pub mbid: Option<String>,
    /// Deezer id.
    pub deezer: Option<u64>,
    /// iTunes id.
    pub itunes: Option<u64>,
}

/// One track, album or artist.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MusicResult {
    /// Track, album or artist.
    #[serde(rename = "type")]
    pub kind: MusicKind,
    /// Track or album title, or the artist's name.
    pub title: String,
    /// Performing artist (tracks and albums).
    pub artist: Option<String>,
    /// Album a track appears on.
    pub album: Option<String>,
    /// Track length, milliseconds.
    pub duration_ms: Option<u64>,
    /// First release date, ISO-8601 (`YYYY-MM-DD` or less precise).
    pub release_date: Option<String>,
    /// ISRC of a track.
    pub isrc: Option<String>,
    /// A short audio preview.
    pub preview_url: Option<String>,
    /// Cover or artist image.
    pub artwork_url: Option<String>,
    /// Ids at each provider.
    pub ids: MusicIds,
    /// The item's page at the provider.
    pub url: Option<String>,
}

impl MusicResult {
    /// A result with only its kind and title known.
    pub fn new(kind: MusicKind, title: String) -> Self {
        Self {
            kind,
            title,
            artist: None,
            album: None,
            duration_ms: None,
            release_date: None,
            isrc: None,
            preview_url: None,
            artwork_url: None,
            ids: MusicIds::default(),
            url: None,
        }
    }
}

/// Answer of `music.search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MusicSearch {
    /// The text asked for.
    pub query: String,
    /// Matches the provider reports for the whole search, when it says.
    pub total: Option<u64>,
    /// The items, best match first.
    pub results: Vec<MusicResult>,
}

/// One video.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoResult {
    /// The provider's id of the video.
    pub id: String,
    /// Title.
    pub title: String,
    /// Watch page.
    pub url: String,
    /// Embeddable player URL.
    pub embed_url: Option<String>,
    /// Thumbnail image.
    pub thumbnail_url: Option<String>,
    /// Length, seconds.
    pub duration_s: Option<u64>,
    /// Publication time, ISO-8601 (a UTC timestamp when the provider gives
    /// a time, else a date).
    pub published_at: Option<String>,
    /// Channel, uploader or collection.
    pub channel: Option<String>,
    /// Description, plain text.
    pub description: Option<String>,
    /// View (or download) count.
    pub views: Option<u64>,
    /// License URL or name, when stated.
    pub license: Option<String>,
}

/// Answer of `video.search`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VideoSearch {
    /// The text asked for.
    pub query: String,
    /// Matches the provider reports for the whole search, when it says.
    pub total: Option<u64>,
    /// The videos, best match first.
    pub results: Vec<VideoResult>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::capability::Request;
    use serde_json::json;

    fn field_of(err: Error) -> String {
        match err {
            Error::InvalidRequest { field, .. } => field,
            other => panic!("expected InvalidRequest, got {other:?}"),
        }
    }

    #[test]
    fn title_queries_validate_and_name_the_field() {
        let Request::MovieSearch(q) = Request::parse(
            "entertainment.movie_search",
            json!({"query": " Terminator ", "year": "1984", "limit": 3}),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(q.lookup, TitleLookup::Text("Terminator".into()));
        assert_eq!((q.year, q.limit, q.label()), (Some(1984), 3, "Terminator"));

        let Request::TvShowSearch(q) =
            Request::parse("tv.show_search", json!({"imdb_id": "TT0903747"})).unwrap()
        else {
            panic!()
        };
        assert_eq!(q.lookup, TitleLookup::Imdb("tt0903747".into()));

        let err = |params| field_of(Request::parse("tv.show_search", params).unwrap_err());
        assert_eq!(err(json!({})), "query");
        assert_eq!(
            err(json!({"query": "x", "imdb_id": "tt0903747"})),
            "imdb_id"
        );
        assert_eq!(err(json!({"imdb_id": "tt12"})), "imdb_id");
        assert_eq!(err(json!({"imdb_id": "tt0903747", "year": 2008})), "year");
        assert_eq!(err(json!({"query": "x", "year": 1500})), "year");
        assert_eq!(err(json!({"query": "x", "limit": 0})), "limit");
        assert_eq!(err(json!({"query": "x", "limit": 51})), "limit");
        assert_eq!(err(json!({"query": "a\u{7}b"})), "query");
        assert_eq!(err(json!({"query": "x".repeat(301)})), "query");
        assert_eq!(err(json!({"query": "x", "page": 2})), "page");
    }

    #[test]
    fn text_and_music_queries_validate() {
        let Request::BooksSearch(q) =
            Request::parse("books.search", json!({"query": "dune"})).unwrap()
        else {
            panic!()
        };
        assert_eq!((q.query.as_str(), q.limit), ("dune", DEFAULT_LIMIT));
        assert_eq!(
            field_of(Request::parse("video.search", json!({"limit": 5})).unwrap_err()),
            "query"
        );
        let Request::MusicSearch(q) = Request::parse(
            "music.search",
            json!({"query": "daft punk", "type": "album"}),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(q.kind, MusicKind::Album);
        assert_eq!(
            field_of(
                Request::parse("music.search", json!({"query": "x", "type": "song"})).unwrap_err()
            ),
            "type"
        );
    }

    #[test]
    fn title_search_filters_by_year_and_limit() {
        let Request::MovieSearch(q) = Request::parse(
            "entertainment.movie_search",
            json!({"query": "x", "year": 1984, "limit": 1}),
        )
        .unwrap() else {
            panic!()
        };
        let title = |year| TitleResult {
            kind: TitleKind::Movie,
            title: "x".into(),
            year,
            release_date: None,
            overview: None,
            genres: vec![],
            status: None,
            network: None,
            rating: None,
            poster_url: None,
            ids: TitleIds::default(),
            url: None,
        };
        let search = TitleSearch::new(
            &q,
            None,
            vec![title(Some(1991)), title(Some(1984)), title(Some(1984))],
        );
        assert_eq!(search.results.len(), 1);
        assert_eq!(search.results[0].year, Some(1984));
    }

    #[test]
    fn isbns_languages_genres_and_ratings_normalise() {
        let mut book = BookResult {
            title: "Dune".into(),
            authors: vec![],
            first_published_year: None,
            isbn13: vec![],
            isbn10: vec![],
            languages: vec![],
            description: None,
            cover_url: None,
            edition_count: None,
            free_read_url: None,
            ids: BookIds::default(),
            url: "u".into(),
        };
        for isbn in [
            "978-0-441-01359-3",
            "044101359X",
            "9780441013593",
            "12345",
            "978044101359Y",
        ] {
            book.add_isbn(isbn);
        }
        assert_eq!(book.isbn13, ["9780441013593"]);
        assert_eq!(book.isbn10, ["044101359X"]);
        assert_eq!(language_code("eng"), "en");
        assert_eq!(language_code("FR"), "fr");
        assert_eq!(language_code("tlh"), "tlh");
        assert_eq!(tmdb_genre(878), Some("Science Fiction"));
        assert_eq!(tmdb_genre(1), None);
        assert_eq!(Rating::out_of_ten(Some(0.0), Some(0)), None);
        assert_eq!(Rating::out_of_ten(Some(8.5), Some(0)), None);
        assert_eq!(
            Rating::out_of_ten(Some(8.5), None).map(|r| r.scale),
            Some(10)
        );
    }

    #[test]
    fn absent_fields_serialise_as_null() {
        let value =
            serde_json::to_value(MusicResult::new(MusicKind::Artist, "Daft Punk".into())).unwrap();
        assert_eq!(value["type"], "artist");
        assert!(value["duration_ms"].is_null() && value.get("duration_ms").is_some());
        assert!(value["ids"]["mbid"].is_null());
    }
}
