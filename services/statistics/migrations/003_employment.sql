-- How far each survivor has come in employment reintegration, across their enrolments: 1 enrolled, 2 employed,
-- 3 still employed at 3 months, 4 at 6 months (one row per survivor: a table's figures add up).
CREATE TABLE employment (
    survivor_id  uuid PRIMARY KEY,
    stage        smallint NOT NULL
);
