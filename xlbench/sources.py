"""Where each corpus comes from: its owners' official source, licence and how xlbench gets it.

Facts only (docs/corpora.md cites them and says how each was found). ``how`` is

- ``download``: the owners publish a direct download; ``xlbench data download`` fetches it;
- ``manual``: registration or a request stands between the user and the files (SAVEE), or the
  owners' page no longer serves them (EMOVO); xlbench says where to put the files.

Any corpus can also be imported from a Hugging Face Hub copy that keeps the original file names
(``xlbench data import``). Checksums are the ones the source itself publishes (Zenodo's md5);
where it publishes none, the size and sha256 of the first download are recorded and checked on
every later download (xlbench.download.ChecksumLog).
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from xlbench.errors import unknown_name


@dataclass(frozen=True)
class Archive:
    """One file to download and unpack."""

    url: str
    #: name in the downloads folder, and under a ``--mirror`` URL
    filename: str
    #: bytes, where the source says
    size: int | None = None
    #: md5 published by the source (Zenodo shows one per file)
    md5: str | None = None
    #: False for archives the server builds on each request (Dataverse's "download all"): their
    #: bytes differ between downloads, so no sha256 is recorded for them; the unpacked files are
    #: hashed one by one in the manifest instead
    stable: bool = True


@dataclass(frozen=True)
class CorpusSource:
    corpus: str
    #: the owners' page (cited in docs/corpora.md)
    page: str
    licence: str
    #: one line the user must accept before a download (what the licence allows)
    terms: str
    #: download size as the source states it ("" where it states none)
    size: str
    how: Literal["download", "manual"]
    archives: tuple[Archive, ...] = ()
    #: who publishes the checksum, for error messages ("Zenodo")
    publisher: str = ""
    #: manual corpora: where to get the files (registration page or request)
    obtain: str = ""
    #: manual corpora: the folder inside the corpus root that must hold the files
    layout: str = ""
    #: manual corpora: the step before `data prepare`, in a few words (for `data status`)
    step: str = ""


SOURCES: MappingProxyType[str, CorpusSource] = MappingProxyType(
    {
        "ravdess": CorpusSource(
            corpus="ravdess",
            page="https://zenodo.org/records/1188976",
            licence="CC BY-NC-SA 4.0",
            terms="RAVDESS is licensed CC BY-NC-SA 4.0: non-commercial, share alike, cite Livingstone & Russo (2018)",
            size="208.5 MB (208,468,073 bytes)",
            how="download",
            archives=(
                Archive(
                    url="https://zenodo.org/records/1188976/files/Audio_Speech_Actors_01-24.zip?download=1",
                    filename="Audio_Speech_Actors_01-24.zip",
                    size=208_468_073,
                    md5="bc696df654c87fed845eb13823edef8a",
                ),
            ),
            publisher="Zenodo",
        ),
        "savee": CorpusSource(
            corpus="savee",
            page="http://kahlan.eps.surrey.ac.uk/savee/",
            licence="research use, after registration",
            terms="SAVEE is free for research use after registration with the University of Surrey",
            size="",
            how="manual",
            obtain="register at http://kahlan.eps.surrey.ac.uk/savee/Register.html to receive the download link",
            layout="AudioData/DC, AudioData/JE, AudioData/JK, AudioData/KL",
            step="register at http://kahlan.eps.surrey.ac.uk/savee/Register.html",
        ),
        "tess": CorpusSource(
            corpus="tess",
            page="https://doi.org/10.5683/SP2/E8H2MF",
            licence="CC BY-NC-ND 4.0",
            terms="TESS is licensed CC BY-NC-ND 4.0: non-commercial, no derivatives, cite Pichora-Fuller & Dupuis",
            size="",
            how="download",
            archives=(
                Archive(
                    # Dataverse's "download all files" of the Borealis record, zipped on request
                    url="https://borealisdata.ca/api/access/dataset/:persistentId/?persistentId=doi:10.5683/SP2/E8H2MF",
                    filename="tess-borealis.zip",
                    stable=False,
                ),
            ),
            publisher="Borealis",
        ),
        "cafe": CorpusSource(
            corpus="cafe",
            page="https://zenodo.org/records/1478765",
            licence="CC BY-NC-SA 4.0",
            terms="CaFE is licensed CC BY-NC-SA 4.0: non-commercial use, share alike, cite Gournay et al. (2018)",
            size="",
            how="download",
            archives=(
                Archive(
                    url="https://zenodo.org/records/1478765/files/CaFE_48k.zip?download=1", filename="CaFE_48k.zip"
                ),
            ),
            publisher="Zenodo",
        ),
        "emodb": CorpusSource(
            corpus="emodb",
            page="http://emodb.bilderbar.info/",
            licence="CC0 / CC BY 4.0 (depending on the distributor)",
            terms="EMO-DB is free to use with attribution: cite Burkhardt et al. (2005)",
            size="",
            how="download",
            archives=(Archive(url="http://emodb.bilderbar.info/download/download.zip", filename="emodb-download.zip"),),
            publisher="emodb.bilderbar.info",
        ),
        "emovo": CorpusSource(
            corpus="emovo",
            page="http://voice.fub.it/activities/corpora/emovo/index.html",
            licence="research use",
            terms="EMOVO is for research use: cite Costantini et al. (2014)",
            size="",
            how="manual",
            obtain=(
                "the owners' page (http://voice.fub.it/activities/corpora/emovo/index.html) no longer serves the "
                "files: ask the authors (Costantini et al., LREC 2014) for EMOVO.zip, or import a Hub copy that "
                "keeps the file names (`xlbench data import --corpus emovo --hub REPO_ID`)"
            ),
            layout="f1, f2, f3, m1, m2, m3",
            step="ask the authors for the files",
        ),
        "shemo": CorpusSource(
            corpus="shemo",
            page="https://github.com/pariajm/sharif-emotional-speech-dataset",
            licence="research use (free for academic purposes)",
            terms="ShEMO is free for academic research: cite Mohamad Nezami, Jamshid Lou & Karami (2019)",
            size="",
            how="download",
            archives=(
                Archive(url="https://www.dropbox.com/s/4t6mep8mo4yf81f/female.zip?dl=1", filename="female.zip"),
                Archive(url="https://www.dropbox.com/s/xfi3hi927yxixa9/male.zip?dl=1", filename="male.zip"),
            ),
            publisher="the authors' release",
        ),
    }
)


def source(corpus: str) -> CorpusSource:
    key = corpus.strip().lower()
    if key not in SOURCES:
        raise unknown_name("corpus", corpus, SOURCES)
    return SOURCES[key]



def get_command(corpus: str) -> str:
    """The one command (after the manual step, for manual corpora) that gets ``corpus``."""
    src = source(corpus)
    if src.how == "download":
        return f"xlbench data download --corpus {src.corpus} --accept-licence"
    return f"{src.step}, then `xlbench data prepare --corpus {src.corpus} --root DIR`"
