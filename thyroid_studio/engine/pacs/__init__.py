"""A PACS over DICOMweb: finding studies and series (QIDO-RS), pulling their instances as DICOM files
(WADO-RS) and pushing files, such as the SEGs ``io.dicom_seg`` writes, back (STOW-RS).

``dicomweb.py`` holds the client (``dicomweb-client`` over ``requests``): a :class:`~.dicomweb.Server`
(its URL never holds credentials; the password is never printed, logged or written), ``find``,
``pull`` and ``push``, and every failure as one :class:`~.dicomweb.PacsError` line.

Imports only the root modules and the io wing (files, frames, dicom_seg).
"""
